"""Errors functions-framework answers by itself are JSON too: real create_app apps, HTTP and CloudEvent.

Without gcfkit.framework these are flask's HTML pages (a malformed CloudEvent: "<title>400 Bad Request</title>",
/robots.txt: an HTML 404, a GET to a CloudEvent function: an HTML 405) or functions-framework's crash
handler (the exception's text with a 500).
"""

from __future__ import annotations

import json

import pytest
from obs_checks import TRACE_ID, TRACEPARENT, check_entry

ERROR_TYPE = "type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent"


def json_answer(response, status: int) -> dict:
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    assert response.mimetype == "application/json", (response.mimetype, text)
    assert "<html" not in text.lower() and "Traceback" not in text
    return response.get_json()


@pytest.mark.parametrize("path", ["/robots.txt", "/favicon.ico"])
def test_the_frameworks_own_404s_of_an_http_function_are_json_and_logged(served, lines, path):
    client = served("obs_http_app.py", "orders")
    response = client.get(path, headers={"traceparent": TRACEPARENT, "Function-Execution-Id": "x-404"})
    assert json_answer(response, 404) == {"error": "not_found", "message": "Not Found"}
    (entry,) = [check_entry(e, trace_id=TRACE_ID) for e in lines()]  # the function never ran: one line
    assert entry["severity"] == "WARNING" and entry["message"].startswith(f"GET {path} -> 404")
    assert entry["httpRequest"]["status"] == 404 and entry["httpRequest"]["requestUrl"].endswith(path)
    assert entry["logging.googleapis.com/labels"]["execution_id"] == "x-404"


@pytest.mark.parametrize("body, content_type, status, error", [
    ("garbage", "application/cloudevents+json", 400, "bad_request"),
    ("{}", "application/cloudevents+json", 400, "bad_request"),
    ('{"no": "event"}', "application/json", 400, "bad_request"),
    ("garbage", "text/plain", 415, "unsupported_media_type"),
])
def test_a_malformed_cloud_event_is_a_json_4xx(served, lines, body, content_type, status, error):
    client = served("obs_event_app.py", "on_upload", signature_type="cloudevent")
    response = client.post("/", data=body, content_type=content_type,
                           headers={"Authorization": "Bearer s3cr3t", "Function-Execution-Id": "x-bad"})
    answer = json_answer(response, status)
    assert answer["error"] == error and answer["message"]
    # functions-framework appends the request's headers and body to its description: never echoed back.
    assert "s3cr3t" not in response.get_data(as_text=True) and "Got HTTP headers" not in answer["message"]
    (entry,) = [check_entry(e) for e in lines()]
    assert entry["severity"] == "WARNING" and entry["httpRequest"]["status"] == status
    assert "s3cr3t" not in json.dumps(entry)


def test_a_method_a_cloud_event_function_does_not_take_is_a_json_405(served, lines):
    client = served("obs_event_app.py", "on_upload", signature_type="cloudevent")
    response = client.get("/")
    assert json_answer(response, 405)["error"] == "method_not_allowed"
    assert response.headers["Allow"] and "POST" in response.headers["Allow"]
    assert json_answer(client.get("/favicon.ico"), 405)["error"] == "method_not_allowed"


def test_a_failed_cloud_event_is_a_json_500_with_the_crash_header_reported_once(served, lines):
    client = served("obs_event_app.py", "on_upload", signature_type="cloudevent")
    event = {"specversion": "1.0", "type": "t", "source": "s", "id": "e-poison", "data": {"name": "poison.csv"}}
    response = client.post("/", data=json.dumps(event), content_type="application/cloudevents+json")
    body = json_answer(response, 500)
    assert body["error"] == "internal" and "poison" not in response.get_data(as_text=True)
    assert response.headers["X-Google-Status"] == "crash", "functions-framework's crash signal is kept"
    events = [e for e in lines() if e.get("@type") == ERROR_TYPE]
    assert [e["error"]["id"] for e in events] == [body["error_id"]], "with_monitoring reported it; not again"


def test_an_exception_after_the_function_returned_is_a_json_500_with_an_error_event(served, lines, capsys):
    client = served("obs_http_app.py", "orders")
    response = client.get("/forgot-to-return", headers={"traceparent": TRACEPARENT})
    body = json_answer(response, 500)
    assert body["error"] == "internal" and len(body["error_id"]) == 16
    assert response.headers["X-Google-Status"] == "crash"
    entries = [check_entry(e, trace_id=TRACE_ID, invocation=False) for e in lines()]
    end = next(e for e in entries if "invocation" in e)
    assert end["severity"] == "ERROR" and end["httpRequest"]["status"] == 500, "with_monitoring saw the None"
    (event,) = [e for e in entries if e.get("@type") == ERROR_TYPE]
    assert event["error"]["id"] == body["error_id"] and "TypeError" in event["message"]
    assert event["context"]["httpRequest"]["responseStatusCode"] == 500
    assert "Traceback" not in capsys.readouterr().err, "flask's unstructured copy of the traceback is not written"


def test_install_is_idempotent_and_works_on_any_flask_app(obs_env, lines):
    import flask
    from gcfkit.framework import EXTENSION, install

    app = flask.Flask("plain")
    install(app)
    handlers = dict(app.error_handler_spec[None])
    install(app)
    assert dict(app.error_handler_spec[None]) == handlers and EXTENSION in app.extensions

    @app.route("/boom")
    def boom():
        raise RuntimeError("kaput")

    client = app.test_client()
    assert json_answer(client.get("/nowhere"), 404)["error"] == "not_found"
    assert json_answer(client.get("/boom"), 500)["error"] == "internal"
    assert [e["severity"] for e in lines()] == ["WARNING", "ERROR"]


def test_an_http_error_carrying_the_applications_own_response_is_answered_with_it(obs_env, lines):
    """Outside with_monitoring too: a 403 raised with the response the code built, and an application's own
    redirect exception, are answered as they are (not as a JSON error of the kit's)."""
    import flask
    from gcfkit.framework import install
    from werkzeug.exceptions import Forbidden, HTTPException

    class MovedOn(HTTPException):
        code = 302

        def get_response(self, environ=None, scope=None):
            return flask.redirect("/elsewhere")

    app = flask.Flask("own-answers")
    install(app)

    @app.route("/mine")
    def mine():
        raise Forbidden(response=flask.make_response({"error": "forbidden", "message": "not your order"}, 403))

    @app.route("/moved")
    def moved():
        raise MovedOn()

    client = app.test_client()
    forbidden = client.get("/mine")
    assert (forbidden.status_code, forbidden.get_json()) == (403, {"error": "forbidden", "message": "not your order"})
    redirected = client.get("/moved")
    assert (redirected.status_code, redirected.headers["Location"]) == (302, "/elsewhere")
    assert lines() == [], "the application's own answers, not errors the kit reports"

def test_error_handlers_the_application_registered_are_kept(obs_env):
    import flask
    from gcfkit.framework import install
    from werkzeug.exceptions import HTTPException

    app = flask.Flask("own")
    app.register_error_handler(HTTPException, lambda exc: ({"mine": exc.code}, exc.code))
    app.register_error_handler(500, lambda exc: ({"mine": 500}, 500))
    app.route("/boom")(lambda: 1 / 0)
    install(app)
    client = app.test_client()
    assert client.get("/nowhere").get_json() == {"mine": 404}
    assert client.get("/boom").get_json() == {"mine": 500}
