#!/bin/sh
# Stands in for smartctl in test_telemetry_storage: prints the fixture named by
# FAKE_SMARTCTL_FIXTURE (default the NVMe one) for whatever device it is asked about, after
# FAKE_SMARTCTL_DELAY seconds (default 0). Exit status 64 like a healthy disk with logged errors.
sleep "${FAKE_SMARTCTL_DELAY:-0}"
cat "$(dirname "$0")/${FAKE_SMARTCTL_FIXTURE:-smartctl_nvme.json}"
exit 64
