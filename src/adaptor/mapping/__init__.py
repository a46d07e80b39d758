"""The mapping engine: JMESPath in, dot paths out, transforms between, compiled once.

Imports no web framework, storage or settings; everything it needs comes in as arguments.
"""

from adaptor.mapping.engine import (
    CompiledEndpoint,
    MappedRequest,
    MappedResponse,
    MappingEngine,
    MappingRule,
)
from adaptor.mapping.errors import (
    Loc,
    MappingConfigError,
    MappingError,
    PathError,
    Problem,
    TransformError,
    format_loc,
)
from adaptor.mapping.paths import (
    Expression,
    ExpressionCache,
    compile_expression,
    extract_value,
    parse_path,
    set_nested_value,
)
from adaptor.mapping.schema import CompiledSchema
from adaptor.mapping.summary import SummaryTemplate, default_summary
from adaptor.mapping.transforms import Transform, TransformRegistry

__all__ = [
    "CompiledEndpoint",
    "CompiledSchema",
    "Expression",
    "ExpressionCache",
    "Loc",
    "MappedRequest",
    "MappedResponse",
    "MappingConfigError",
    "MappingEngine",
    "MappingError",
    "MappingRule",
    "PathError",
    "Problem",
    "SummaryTemplate",
    "Transform",
    "TransformError",
    "TransformRegistry",
    "compile_expression",
    "default_summary",
    "extract_value",
    "format_loc",
    "parse_path",
    "set_nested_value",
]
