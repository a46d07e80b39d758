"""Domain types shared by every module (the specification's Level 4 types).

Pure pydantic: no web framework, storage or settings imports, so engine packages can use them.
"""

from adaptor.domain.execution import (
    ErrorCode,
    ErrorDetail,
    ExecutionLog,
    ExecutionOptions,
    ExecutionRequest,
    ExecutionResult,
    IntegrationHealth,
    IntegrationResponse,
)
from adaptor.domain.integration import (
    MASK,
    AuthConfig,
    AuthType,
    CacheConfig,
    CircuitBreakerConfig,
    EndpointConfig,
    HttpMethod,
    IntegrationConfig,
    IntegrationSpec,
    IntegrationType,
    RateLimitConfig,
    RequestMapping,
    ResponseMapping,
    RetryConfig,
    TestCase,
    TransformRule,
    ValidationRule,
    WebhookConfig,
)

__all__ = [
    "MASK",
    "AuthConfig",
    "AuthType",
    "CacheConfig",
    "CircuitBreakerConfig",
    "EndpointConfig",
    "ErrorCode",
    "ErrorDetail",
    "ExecutionLog",
    "ExecutionOptions",
    "ExecutionRequest",
    "ExecutionResult",
    "HttpMethod",
    "IntegrationConfig",
    "IntegrationHealth",
    "IntegrationResponse",
    "IntegrationSpec",
    "IntegrationType",
    "RateLimitConfig",
    "RequestMapping",
    "ResponseMapping",
    "RetryConfig",
    "TestCase",
    "TransformRule",
    "ValidationRule",
    "WebhookConfig",
]
