import os

from django.core.wsgi import get_wsgi_application

from cpo.envfile import env_file_load

env_file_load()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cpo.settings")
application = get_wsgi_application()
