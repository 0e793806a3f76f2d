"""The running process: the Service, the web process and the command line. It wires
the library (``scorer``) and the jobs (``jobs``) together; neither imports it."""
