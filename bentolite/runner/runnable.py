"""``Runnable``: the unit of model code a Runner executes, with its ``@method`` declarations."""
from __future__ import annotations

import inspect
from typing import Any, Callable, ClassVar, Generic, TypeVar, overload

import attrs

from ..exceptions import BentoMLException

__all__ = ["Runnable", "RunnableMethod", "RunnableMethodConfig"]

T = TypeVar("T", bound="Runnable")
F = TypeVar("F", bound=Callable[..., Any])


def _batch_dim(value: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    first, second = value
    return (int(first), int(second))


@attrs.frozen
class RunnableMethodConfig:
    batchable: bool = False
    batch_dim: tuple[int, int] = attrs.field(default=(0, 0), converter=_batch_dim)
    input_spec: Any = None
    output_spec: Any = None
    is_stream: bool = False
    #: an ``async def`` method (new-style services): awaited on the worker's event loop
    is_async: bool = False


class RunnableMethod(Generic[F]):
    """A method declared with ``@Runnable.method``; registers itself on its class."""

    def __init__(self, func: F, config: RunnableMethodConfig) -> None:
        self.func = func
        self.config = config
        self.name = getattr(func, "__name__", "<method>")

    def __set_name__(self, owner: type[Runnable], name: str) -> None:
        self.name = name
        owner._own_methods()[name] = self

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> RunnableMethod[F]: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> F: ...
    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return self.func.__get__(obj, objtype)

    def __repr__(self) -> str:
        return f"RunnableMethod({self.name!r}, {self.config})"


class Runnable:
    """Base class for model code run by a Runner.

    Subclasses set ``SUPPORTED_RESOURCES`` (e.g. ``("cpu",)`` or ``("nvidia.com/gpu", "cpu")``)
    and ``SUPPORTS_CPU_MULTI_THREADING``, and mark callable methods with ``@Runnable.method``.
    """

    SUPPORTED_RESOURCES: ClassVar[tuple[str, ...]]
    SUPPORTS_CPU_MULTI_THREADING: ClassVar[bool]
    bentoml_runnable_methods__: ClassVar[dict[str, RunnableMethod[Any]] | None] = None

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("SUPPORTED_RESOURCES", "SUPPORTS_CPU_MULTI_THREADING"):
            raise BentoMLException(f"{name} is a class attribute; set it on the Runnable class")
        super().__setattr__(name, value)

    @classmethod
    def _own_methods(cls) -> dict[str, RunnableMethod[Any]]:
        # Each subclass gets its own copy of the inherited methods, so overriding a method
        # in a subclass never changes the parent (BentoML 1.1 shared and mutated one dict).
        if "bentoml_runnable_methods__" not in cls.__dict__:
            inherited = dict(cls.bentoml_runnable_methods__ or {})
            cls.bentoml_runnable_methods__ = inherited
        methods = cls.__dict__["bentoml_runnable_methods__"]
        assert methods is not None
        return methods

    @classmethod
    def methods(cls) -> dict[str, RunnableMethod[Any]]:
        """Declared methods by name (inherited ones included)."""
        return dict(cls._own_methods())

    @staticmethod
    def method(
        meth: F | None = None,
        *,
        batchable: bool = False,
        batch_dim: int | tuple[int, int] = 0,
        input_spec: Any = None,
        output_spec: Any = None,
    ) -> Any:
        """Declare a runnable method; usable bare (``@Runnable.method``) or with options."""

        def wrap(func: F) -> RunnableMethod[F]:
            if inspect.iscoroutinefunction(func):
                raise BentoMLException(
                    f"runnable method {func.__name__!r} must be a plain function, not async def: "
                    "it runs in the runner's worker thread"
                )
            config = RunnableMethodConfig(
                batchable=batchable,
                batch_dim=batch_dim,
                input_spec=input_spec,
                output_spec=output_spec,
                is_stream=inspect.isgeneratorfunction(func),
            )
            return RunnableMethod(func, config)

        return wrap(meth) if meth is not None else wrap

    @classmethod
    def add_method(
        cls,
        func: Callable[..., Any],
        name: str,
        *,
        batchable: bool = False,
        batch_dim: int | tuple[int, int] = 0,
        input_spec: Any = None,
        output_spec: Any = None,
    ) -> None:
        """Register ``func`` as method ``name`` (used by framework runnables)."""
        method = Runnable.method(
            func, batchable=batchable, batch_dim=batch_dim, input_spec=input_spec,
            output_spec=output_spec,
        )
        setattr(cls, name, method)
        method.__set_name__(cls, name)
