"""A Label Studio ML backend written as its users write them (label-studio-ml 1.0.9's
LabelStudioMLBase): it predicts the first choice of the label config's <Choices> for a text
holding "apple", the second otherwise (taking 3 s over a text holding "slowly"), and counts
its fit() calls in a file (LENGTH_MODEL_FIT_LOG) so a test can tell that training reached
it. Runs in its own virtual environment, never imported by labelfarm's tests."""

import json
import os
import time

from label_studio_ml.model import LabelStudioMLBase


class LengthModel(LabelStudioMLBase):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        from_name, info = next(iter(self.parsed_label_config.items()))
        self.from_name = from_name
        self.to_name = info["to_name"][0]
        self.value = info["inputs"][0]["value"]
        self.choices = info["labels"]

    def predict(self, tasks, **kwargs):
        if any("slowly" in str(task["data"].get(self.value, "")) for task in tasks):
            time.sleep(3)  # a model that takes its time
        out = []
        for task in tasks:
            text = str(task["data"].get(self.value, ""))
            choice = self.choices[0] if "apple" in text else self.choices[1]
            out.append(
                {
                    "result": [
                        {
                            "from_name": self.from_name,
                            "to_name": self.to_name,
                            "type": "choices",
                            "value": {"choices": [choice]},
                        }
                    ],
                    "score": min(1.0, len(text) / 100),
                }
            )
        return out

    def fit(self, tasks, workdir=None, **kwargs):
        with open(os.environ["LENGTH_MODEL_FIT_LOG"], "a") as log:
            data = kwargs.get("data") or {}
            line = {"event": kwargs.get("event"), "annotation": data.get("annotation")}
            log.write(json.dumps(line) + "\n")
        return {"fitted": True}
