"""What an operator watches: Prometheus metrics and JSON logs."""
