#!/bin/sh
# A stand-in for kubectl in tests: logs its arguments, prints fixture JSON shaped like what a
# KServe (Knative mode) cluster returns.
echo "$*" >> "$FAKE_KUBECTL_LOG"
case "$*" in
  *" version "*) echo '{"clientVersion":{"gitVersion":"v1.29.0"}}' ;;
  *"apply -f -"*) cat > "$FAKE_KUBECTL_LOG.applied"; echo "inferenceservice.serving.kserve.io/sklearn-iris created" ;;
  *"get inferenceservice missing "*)
    echo 'Error from server (NotFound): inferenceservices.serving.kserve.io "missing" not found' >&2; exit 1 ;;
  *"get inferenceservice "*) cat "$FAKE_KUBECTL_FIXTURES/inferenceservice.json" ;;
  # Watches print each event as a JSON document and stay open (killed with the target).
  *"get pods "*" -w "*) cat "$FAKE_KUBECTL_FIXTURES/pods-watch.json"; exec sleep 600 ;;
  *"get podautoscalers.autoscaling.internal.knative.dev "*" -w "*)
    cat "$FAKE_KUBECTL_FIXTURES/podautoscalers-watch.json"; exec sleep 600 ;;
  *"get configmap config-autoscaler "*)
    echo '{"apiVersion":"v1","kind":"ConfigMap","data":{"_example":"ignored","stable-window":"6s","scale-to-zero-grace-period":"6s"}}' ;;
  *"get revisions.serving.knative.dev "*)
    echo '{"apiVersion":"v1","kind":"List","items":[{"spec":{"containers":[{"name":"kserve-container","ports":[{"containerPort":8080,"protocol":"TCP"}]}]}}]}' ;;
  *"get pods "*) cat "$FAKE_KUBECTL_FIXTURES/pods.json" ;;
  *"get podautoscalers.autoscaling.internal.knative.dev "*) cat "$FAKE_KUBECTL_FIXTURES/podautoscalers.json" ;;
  *"delete inferenceservice "*) echo 'inferenceservice.serving.kserve.io "sklearn-iris" deleted' ;;
  *) echo "fake kubectl: unexpected arguments: $*" >&2; exit 3 ;;
esac
