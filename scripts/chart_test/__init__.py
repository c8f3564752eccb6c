"""Offline tests of charts/census and kind-config.yaml (run by scripts/chart-test.sh)."""
