"""Extensions, created once and bound in create_app."""
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from engine.models import Base

from . import ratelimits  # noqa: F401  (registers traject-sqlite://, the default storage of the login budget)

db = SQLAlchemy(metadata=Base.metadata, session_options={"expire_on_commit": False})
migrate = Migrate()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=False)
# The HTML views: CSRF on every form (the bearer-token API is exempt), Dutch and English.
csrf = CSRFProtect()
babel = Babel()
