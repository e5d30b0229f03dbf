"""The API's routes, a module each (web/app.py includes their routers)."""

# auto-accept's routes are on the quality routes' router (web/routes/auto_accept.py)
from labelfarm.web.routes import auto_accept as auto_accept

# calibration's routes are on the quality routes' router (web/routes/calibration.py)
from labelfarm.web.routes import calibration as calibration

# label errors' routes are on the quality routes' router (web/routes/label_errors.py)
from labelfarm.web.routes import label_errors as label_errors

# refreshing the queue's scores is on the model routes' router (web/routes/scores.py)
from labelfarm.web.routes import scores as scores
