"""Data: corpus adapters, features, feature cache, splits and the LightningDataModule."""
