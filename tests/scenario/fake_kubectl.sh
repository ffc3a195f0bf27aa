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
  *"get pods "*) cat "$FAKE_KUBECTL_FIXTURES/pods.json" ;;
  *"get podautoscalers.autoscaling.internal.knative.dev "*) cat "$FAKE_KUBECTL_FIXTURES/podautoscalers.json" ;;
  *"delete inferenceservice "*) echo 'inferenceservice.serving.kserve.io "sklearn-iris" deleted' ;;
  *) echo "fake kubectl: unexpected arguments: $*" >&2; exit 3 ;;
esac
