"""An HTTP function with health checks, for the /health tests. Checks are registered by the test."""

import functions_framework
from gcfkit.health import HealthChecks
from gcfkit.monitoring import with_monitoring

health = HealthChecks(cache_seconds=5)


@functions_framework.http
@with_monitoring(health=health)
def probed(request):
    return "ok"
