"""An HTTP function as a user writes it, for the with_monitoring tests."""

import threading

import functions_framework
from flask import abort, make_response
from gcfkit.logging import Logger
from gcfkit.metrics import Metrics
from gcfkit.monitoring import with_monitoring
from werkzeug.exceptions import HTTPException

logger = Logger()
metrics = Metrics()


class PaymentRequired(HTTPException):  # an application's own HTTP error
    code = 402
    description = "the plan has expired"


entered = threading.Barrier(2, timeout=10)  # the concurrency test holds two requests inside the function


@functions_framework.http
@with_monitoring(logger=logger, metrics=metrics)
def orders(request):
    logger.debug("loading order", order_id=request.args.get("id"))
    logger.info("processing order", order_id=request.args.get("id"), card={"number": "4111", "cvv": "123"})
    metrics.increment("orders_created", plan=request.args.get("plan", "free"))
    metrics.observe("payment_ms", 41.5, provider="stripe")
    with metrics.timer("firestore_read_ms"):
        pass
    if request.path == "/boom":
        raise ValueError("card declined for customer 42")
    if request.path == "/json":
        return {"received": request.get_json()}  # bad JSON -> werkzeug BadRequest -> JSON 400
    if request.path == "/missing":
        abort(404, description="no such order")
    if request.path == "/forbidden":
        abort(make_response({"error": "forbidden", "message": "not your order"}, 403))
    if request.path == "/expired":
        raise PaymentRequired()
    if request.path == "/loop":
        for _ in range(150):
            metrics.observe("read_ms", 1.0)
    if request.path == "/unavailable":
        return {"error": "maintenance"}, 503
    if request.path == "/forgot-to-return":
        return None  # flask raises TypeError after with_monitoring returned: the app's 500 handler answers
    if request.path == "/keys":
        logger.append_keys(tenant=request.args["tenant"])
        entered.wait()  # both requests are inside, each with its own keys
        logger.info("tenant line")
    return {"ok": True}
