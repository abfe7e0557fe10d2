"""MLflow "model from code" for siteml detectors; MLflow copies this file into each logged model.

It is self-contained (no siteml import) so that any MLflow client with Ultralytics installed can
load a registered siteml model:

    model = mlflow.pyfunc.load_model("models:/<site>.<task>@candidate")
    detections = model.predict(["frame1.jpg", "frame2.jpg"])

Input: a list of image paths (MLflow checks it against the signature). Output: a DataFrame with
one row per detection: ``image`` (index of the input path), ``class_id``, ``class_name``,
``score``, ``x1``, ``y1``, ``x2``, ``y2`` (pixels). The confidence threshold and image size
come from the model config (``load_model(uri, model_config={"conf": 0.1})``; defaults: 0.25
and the training size).
The model files are the ``model`` artifact: a ``.pt``, an ``.onnx`` or an OpenVINO IR folder.
"""

import os

import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model

COLUMNS = ["image", "class_id", "class_name", "score", "x1", "y1", "x2", "y2"]


class Detector(mlflow.pyfunc.PythonModel):
    """A YOLO detector behind MLflow's pyfunc interface."""

    def load_context(self, context):
        os.environ.setdefault("YOLO_OFFLINE", "1")
        os.environ.setdefault("YOLO_AUTOINSTALL", "False")
        from ultralytics import YOLO

        config = context.model_config or {}
        self.imgsz = int(config.get("imgsz", 640))
        self.conf = float(config.get("conf", 0.25))
        self.model = YOLO(context.artifacts["model"], task="detect")

    def predict(self, context, model_input: list[str], params=None):
        rows = []
        for index, image in enumerate(model_input):
            [result] = self.model.predict(image, imgsz=self.imgsz, conf=self.conf, verbose=False)
            names = result.names
            for box, score, cls in zip(result.boxes.xyxy.tolist(), result.boxes.conf.tolist(),
                                       result.boxes.cls.tolist(), strict=True):
                rows.append([index, int(cls), names[int(cls)], float(score), *box])
        return pd.DataFrame(rows, columns=COLUMNS)


set_model(Detector())
