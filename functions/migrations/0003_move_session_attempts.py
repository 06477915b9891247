"""A session's `attempts` array moves into the subcollection `sessions/{id}/attempts/{0000..}`.

Arrays inside one document grow towards the 1 MiB document limit and are rewritten on every answer;
one document per attempt is appended cheaply and can be queried (collection group `attempts`). The
session keeps `attempt_count`. Each session and its attempt documents are written in one atomic batch.
"""

version = "0003"
name = "move session attempts into a subcollection"


def up(op):
    def move(session):
        if "attempts" not in session.data:  # already in the new shape (written by new code)
            return
        attempts = session.data.pop("attempts")
        for number, attempt in enumerate(attempts):
            session.set_child(f"attempts/{number:04d}", attempt)
        session.data["attempt_count"] = len(attempts)

    op.transform("sessions", move, description="move attempts into sessions/{id}/attempts")


def down(op):
    def restore(session):
        if "attempts" in session.data:  # still in the old shape
            return
        children = session.children("attempts")
        session.data["attempts"] = [child.data for child in children]
        for child in children:
            session.delete_child(f"attempts/{child.id}")
        session.data.pop("attempt_count", None)

    op.transform("sessions", restore, description="move attempts back into the sessions' arrays")


def validate(op):
    per_session = {}
    for attempt in op.documents("attempts", group=True):
        session = attempt.path.rsplit("/", 2)[0]
        per_session[session] = per_session.get(session, 0) + 1
    op.expect("sessions", lambda s: "attempts" not in s.data
              and s.data.get("attempt_count", 0) == per_session.get(s.path, 0),
              "no session keeps an attempts array; attempt_count equals its attempt documents")
