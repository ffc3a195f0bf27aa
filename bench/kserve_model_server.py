"""KServe's own ModelServer (PyPI `kserve`) serving an xgboost or sklearn model as KServe's
xgbserver and sklearnserver do (those ship as images, not on PyPI): the request's instances (V1) or
input tensors (V2) become one array, predicted, and the answer is made by KServe's own
get_predict_response. Used by bench/fidelity.sh and bench/peers.sh, inside their virtualenv.

Usage: python kserve_model_server.py --framework xgboost|sklearn --model_dir DIR --model_name NAME
       --http_port P --grpc_port P --workers 1
"""
import argparse, os
import numpy as np
import kserve
from kserve import Model
from kserve.errors import InferenceError
from kserve.utils.utils import get_predict_input, get_predict_response

parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
parser.add_argument("--framework", required=True, choices=["xgboost", "sklearn"])
parser.add_argument("--model_dir", required=True)
args, _ = parser.parse_known_args()

class Served(Model):
    def load(self):
        if args.framework == "xgboost":
            import xgboost as xgb
            self._booster = xgb.Booster(model_file=os.path.join(args.model_dir, "model.json"))
        else:
            import joblib
            self._model = joblib.load(os.path.join(args.model_dir, "model.joblib"))
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        try:
            instances = get_predict_input(payload)
            if args.framework == "xgboost":
                import xgboost as xgb
                result = self._booster.predict(xgb.DMatrix(instances))
            else:
                result = self._model.predict(np.asarray(instances))
            return get_predict_response(payload, result, self.name)
        except Exception as e:
            raise InferenceError(str(e))

if __name__ == "__main__":
    model = Served(args.model_name)
    model.load()
    kserve.ModelServer().start([model])
