"""The one entropy-coding backend: rANS format, CDF tables, entropy models."""

from neurocodec.entropy.tables import CdfTables, gaussian_tables, laplace_tables, pmf_tables

__all__ = ["CdfTables", "gaussian_tables", "laplace_tables", "pmf_tables"]
