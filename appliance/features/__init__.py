"""Agents' phone features: the codes an agent dials from the phone on the desk."""

from appliance.features.codes import FEATURE_CODES, Verdict, feature_code

__all__ = ["FEATURE_CODES", "Verdict", "feature_code"]
