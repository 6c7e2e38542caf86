"""The local stack behind ``kizuna up``: KIZUNA_HOME's layout, its keys, the lock, anvil with
state on disk, the deployment, the content store, the database and the API on 127.0.0.1."""
