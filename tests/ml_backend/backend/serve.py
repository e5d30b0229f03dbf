"""Start LengthModel as label-studio-ml's own server (its _wsgi.py, reduced): bound to the
host and port given, with basic auth in front when LENGTH_MODEL_AUTH=user:password, as a
reverse proxy would add it. Usage: python serve.py HOST PORT MODEL_DIR"""

import base64
import os
import sys

from flask import request
from label_studio_ml.api import init_app

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from length_model import LengthModel

host, port, model_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
app = init_app(
    model_class=LengthModel,
    model_dir=model_dir,
    redis_queue="default",
    redis_host="127.0.0.1",
    redis_port=1,  # no Redis: the package then runs jobs in processes of its own
)
auth = os.environ.get("LENGTH_MODEL_AUTH")
if auth:
    expected = "Basic " + base64.b64encode(auth.encode()).decode()

    @app.before_request
    def _basic_auth():
        if request.headers.get("Authorization") != expected:
            return {"error": "unauthorized"}, 401
        return None


app.run(host=host, port=port, debug=False)
