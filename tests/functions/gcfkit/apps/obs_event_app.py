"""A CloudEvent function as a user writes it, for the with_monitoring tests."""

import functions_framework
from gcfkit.logging import Logger
from gcfkit.monitoring import with_monitoring

logger = Logger()


@functions_framework.cloud_event
@with_monitoring(logger=logger)
def on_upload(cloud_event):
    logger.info("file uploaded", name=cloud_event.data.get("name"))
    if cloud_event.data.get("name") == "poison.csv":
        raise RuntimeError("cannot parse poison.csv")
