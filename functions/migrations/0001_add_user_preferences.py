"""Every user gets `preferences` with defaults (the settings page reads them; older users had none)."""

version = "0001"
name = "add user preferences with defaults"

DEFAULTS = {"theme": "system", "email_digest": "weekly", "language": "en"}


def up(op):
    op.add_field("users", "preferences", DEFAULTS)


def down(op):
    op.remove_field("users", "preferences")


def validate(op):
    op.expect("users", lambda user: isinstance(user.data.get("preferences"), dict)
              and DEFAULTS.keys() <= user.data["preferences"].keys(),
              "every user has preferences with theme, email_digest and language")
