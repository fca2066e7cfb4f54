"""Worker tests that cannot apply to molt_host_bridge (the host ABI behind
molt_worker's stdio contract, stage pytest-host): they test molt_worker's
process, which the host has no part of. conftest.py skips them, with the
reason, when MOLT_WORKER_BIN is the bridge; everything else in
test_worker_*.py and test_attack_*.py runs through the ABI unchanged.
Socket-mode tests skip themselves (worker_client.Worker)."""

PROCESS = "molt_worker's process, not the request core: "

SKIPS = {
    "test_worker_replicas.py::test_configuration_is_checked":
        PROCESS + "--help and the exit status of a worker that cannot start",
    "test_worker_config.py::test_bad_configuration[args0-":
        PROCESS + "choosing a transport (a host has none)",
    "test_worker_config.py::test_help_documents_every_setting": PROCESS + "--help",
    "test_worker_ops.py::test_help_names_the_new_settings_and_signals": PROCESS + "--help",
    "test_worker_config.py::test_metrics_endpoint_and_request_log":
        PROCESS + "the metrics endpoint (metrics_listen is a transport)",
    "test_worker_ops.py::test_metrics_remote_address_needs_the_flag":
        PROCESS + "the metrics endpoint",
    "test_worker_ops.py::test_prometheus_exposition_":
        PROCESS + "the metrics endpoint",
    "test_worker_config.py::test_signal_": PROCESS + "SIGTERM/SIGINT/SIGHUP handling",
    "test_worker_errors.py::test_worker_that_cannot_start_says_why[":
        PROCESS + "checking that stdin/stdout are pipes",
    "test_worker_ops.py::test_ready_line_": PROCESS + "the ready line on stderr",
    "test_worker_ops.py::test_settings_from_environment":
        PROCESS + "MOLT_WORKER_* variables (a host takes its settings as arguments)",
    "test_attack_limits.py::test_no_core_dump_by_default":
        PROCESS + "core dumps are the embedding program's to allow",
    "test_attack_limits.py::test_sessions_beyond_the_fd_limit_refused_at_start":
        PROCESS + "RLIMIT_NOFILE and max_sessions (a host has no sessions to accept)",
    "test_attack_limits.py::test_metrics_port_cap_and_timeout":
        PROCESS + "the metrics endpoint",
    "test_attack_pg.py::test_password_in_db_flag_is_hidden_from_ps":
        PROCESS + "its own argv in ps (a host's arguments are the caller's memory)",
}


def reason(nodeid):
    """The reason to skip a test id (path::name[params]), or None."""
    path, _, test = nodeid.partition("::")  # a parameter may hold a "/"
    name = path.rsplit("/", 1)[-1] + "::" + test
    for prefix, why in SKIPS.items():
        if name.startswith(prefix):
            return "host bridge: " + why
    return None
