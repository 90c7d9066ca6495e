"""The site configuration: a validated, versioned YAML document."""

from appliance.config.loader import ConfigError, ConfigIssue, load_config, parse_config
from appliance.config.model import SiteConfig

__all__ = ["ConfigError", "ConfigIssue", "SiteConfig", "load_config", "parse_config"]
