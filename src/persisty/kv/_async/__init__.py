"""The async services (their sync twins are generated into ``persisty.kv._sync``)."""
