"""What every layer may read: the engine's settings (core.settings)."""
