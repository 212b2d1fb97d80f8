"""meter_adapter."""
