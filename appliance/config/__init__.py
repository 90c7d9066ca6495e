"""The site configuration: a validated, versioned YAML document."""

from appliance.config.loader import load_config, parse_config
from appliance.config.model import SiteConfig
from appliance.errors import ConfigError, ConfigIssue

__all__ = ["ConfigError", "ConfigIssue", "SiteConfig", "load_config", "parse_config"]
