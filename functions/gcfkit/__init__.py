"""gcfkit: runtime utilities bundled into every function (logging, metrics, errors, health, migrations, ...).

Importing this package must stay cheap (it is on every cold start): subpackages are imported by the
code that uses them, and no google-cloud client library is imported here.
"""
