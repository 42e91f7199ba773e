# libfabric implementation sources (verbs and tcp providers).
