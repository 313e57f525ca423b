"""Job specs, the durable queue, the pipeline and the worker."""
