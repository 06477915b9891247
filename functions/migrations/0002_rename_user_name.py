"""`users.name` becomes `users.display_name` (it is shown, not a legal name; the API says display_name)."""

version = "0002"
name = "rename users.name to display_name"


def up(op):
    op.rename_field("users", "name", "display_name")


def down(op):
    op.rename_field("users", "display_name", "name")


def validate(op):
    op.expect("users", lambda user: "name" not in user.data and isinstance(user.data.get("display_name"), str),
              "no user has name; every user has a display_name string")
