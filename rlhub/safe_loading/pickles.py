"""The restricted pickle reader: a pickle read as data, never as code, within bounded memory and time.

Every class or function a pickle names becomes an inert :class:`Placeholder` (made per read, never
imported or called); unpickling "calls" or "builds" one and it only records the arguments. The only
real callables a pickle reaches (:data:`_SAFE_GLOBALS`) build numpy arrays and plain containers, and
each checks its arguments before it allocates anything. :func:`audit` then says what unpickling the
file for real would have called, and :func:`materialize` turns what is plain data into plain data.

Reading is bounded (:mod:`.limits`): the instructions of one file's pickles, the distinct names they
use, the size of each array (checked before numpy allocates it), and -- since a pickle can share
one value many times, so that a tiny file expands to an exponential tree -- the expanded size of
every value handed on. Dict keys and set elements are hashed as they are read, so only kinds whose
hash costs O(1) and cannot be made to collide at will are accepted as keys.
"""

from __future__ import annotations

import collections
import io
import pickle
import pickletools
import struct
import sys
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rlhub.safe_loading.errors import UnsafeAgentError, unsafe
from rlhub.safe_loading.imports import resolve_class, trusted_packages
from rlhub.safe_loading.limits import Limits, limits

if TYPE_CHECKING:
    from typing import Self


class Placeholder:
    """An object a pickle names or builds; subclasses stand for one ``module.name`` each.

    Unpickling "calls" it (REDUCE) or "builds" it (NEWOBJ + BUILD); both only record arguments.
    Slots, and lists made only when needed, keep it small: a file may hold hundreds of thousands.
    """

    __slots__ = ("args", "called", "callee", "entries", "items", "kwargs", "state")
    module_name = ""
    ref_name = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        self = object.__new__(cls)
        self.args, self.kwargs = args, kwargs or None
        self.called, self.state, self.callee = False, None, None
        self.items: list[Any] | None = None
        self.entries: list[tuple[Any, Any]] | None = None  # pairs: a key is never hashed here
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.called = True  # pickle's NEWOBJ never calls __init__; REDUCE (a call) does

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __call__(self, *args: Any, **kwargs: Any) -> Placeholder:
        result = CallResult(*args, **kwargs)
        result.callee = self
        return result

    def append(self, item: Any) -> None:
        self.extend((item,))

    def extend(self, items: Any) -> None:
        if self.items is None:
            self.items = []
        self.items.extend(items)

    def __setitem__(self, key: Any, value: Any) -> None:
        if self.entries is None:
            self.entries = []
        self.entries.append((key, value))

    @classmethod
    def describe(cls) -> str:
        return f"{cls.module_name}.{cls.ref_name}"


class CallResult(Placeholder):
    """What calling a placeholder returned (``callee`` is the placeholder called)."""

    __slots__ = ()

    @classmethod
    def describe(cls) -> str:
        return "the result of a call"


class NotData(ValueError):
    """The value holds objects (placeholders), not plain data."""


# ---------------------------------------------------------------------------------------------
# The real callables a pickle may reach, each checking its arguments first


def _array_shape(shape: Any) -> int:
    """The number of elements of a pickled array shape (a tuple of at most 64 sizes), exactly."""
    if type(shape) is not tuple or len(shape) > 64 or not all(type(size) is int and size >= 0 for size in shape):
        raise pickle.UnpicklingError("an array shape that is not a tuple of sizes")
    count = 1
    for size in shape:
        count *= size
    return count


class _NdarrayType:
    """Stands for ``numpy.ndarray`` in a pickle: only ``_reconstruct`` may use it (no allocation)."""

    def __init__(self, *args: Any) -> None:
        raise pickle.UnpicklingError("numpy.ndarray is not called when unpickling an array")


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    # numpy pickles an array as _reconstruct(ndarray, (0,), b"b") and then sets its state: an empty
    # array is all it ever asks for (a larger shape would only allocate memory).
    if subtype is not _NdarrayType or shape != (0,) or dtype not in (b"b", "b"):
        raise pickle.UnpicklingError("only plain numpy arrays can be read")
    return np.ndarray.__new__(np.ndarray, (0,), "b")


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any, axis_order: Any = None) -> np.ndarray:
    # numpy's pickle protocol 5 form: a view of bytes the pickle holds, so nothing is allocated.
    # numpy >= 2.3 keeps a transposed array's memory order: order "K" and the axes' permutation.
    if not isinstance(buffer, (bytes, bytearray)) or not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("an array buffer that is not plain numbers")
    if order not in ("C", "F", "K") or _array_shape(shape) * dtype.itemsize != len(buffer) or dtype.itemsize == 0:
        raise pickle.UnpicklingError("an array buffer whose size does not fit its shape")
    array = np.frombuffer(buffer, dtype=dtype)
    if order != "K" or axis_order is None:
        return array.reshape(shape, order="C" if order == "K" else order)
    if (not isinstance(axis_order, tuple) or not all(type(axis) is int for axis in axis_order)
            or sorted(axis_order) != list(range(len(shape)))):
        raise pickle.UnpicklingError("an array buffer whose axis order is not a permutation of its axes")
    return array.reshape(shape, order="C").transpose(axis_order)  # shape: as the array lies in memory


def _scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype):
        raise pickle.UnpicklingError("a numpy scalar without a dtype")
    if dtype.hasobject:
        if dtype.kind != "O":
            raise pickle.UnpicklingError("a structured numpy scalar holding objects")
        return data  # numpy's scalar(dtype('O'), obj) is obj
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError("a numpy scalar whose data does not fit its type")
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray  # numpy 2 / 1
    return multiarray.scalar(dtype, data)


def _dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    if not isinstance(spec, str) or len(spec) > 64:
        raise pickle.UnpicklingError("a numpy dtype that is not named by a short string")
    # Always a copy: BUILD then sets the state of this object, never of numpy's shared float64.
    return np.dtype(spec, align=bool(align), copy=True)


def _complex(real: Any = 0, imag: Any = 0) -> complex:
    if type(real) not in (int, float) or type(imag) not in (int, float):
        raise pickle.UnpicklingError("a complex number of something other than numbers")
    return complex(real, imag)


def _latin1_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
        raise pickle.UnpicklingError("an unexpected text encoding")
    return text.encode(encoding)


def _set(items: Any = ()) -> set:
    return set(_checked_keys(items))


def _frozenset(items: Any = ()) -> frozenset:
    return frozenset(_checked_keys(items))


def _ordered_dict(items: Any = ()) -> collections.OrderedDict:
    if isinstance(items, dict):
        return collections.OrderedDict(items)  # its keys were checked as they were set
    if not isinstance(items, (list, tuple)) or not all(type(pair) in (list, tuple) and len(pair) == 2
                                                       for pair in items):
        raise pickle.UnpicklingError("an OrderedDict of something other than pairs")
    return collections.OrderedDict((_checked_key(key), value) for key, value in items)


def _copyreg_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    if isinstance(cls, type) and issubclass(cls, Placeholder):
        if base is object:
            return cls.__new__(cls)
        if isinstance(base, type) and issubclass(base, Placeholder):
            return base(state)  # a real unpickler would call base.__init__: recorded as a call
    raise pickle.UnpicklingError("copyreg._reconstructor of a real class")


#: What NEWOBJ may build besides placeholders: an empty container (the pickle fills it).
_EMPTY_CONTAINERS: dict[Any, type] = {_ordered_dict: collections.OrderedDict, _set: set,
                                      collections.deque: collections.deque}


def _newobj(cls: Any, *args: Any, **kwargs: Any) -> Any:
    if isinstance(cls, type) and issubclass(cls, Placeholder):
        return cls.__new__(cls, *args, **kwargs)
    if callable(cls) and cls in _EMPTY_CONTAINERS:
        return _EMPTY_CONTAINERS[cls]()
    raise pickle.UnpicklingError(f"cannot build a {type(cls).__name__}")


def _safe_globals() -> dict[tuple[str, str], Any]:
    """The only real callables a downloaded pickle reaches: they build arrays and containers.

    ``builtins.bytearray`` (``bytearray(8 << 30)`` is a 61-byte pickle) and every other callable
    that allocates what its arguments ask for are missing on purpose.
    """
    found: dict[tuple[str, str], Any] = {}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        found[(module, "_reconstruct")] = _reconstruct
        found[(module, "scalar")] = _scalar
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        found[(module, "_frombuffer")] = _frombuffer
    for module in ("builtins", "__builtin__"):
        found.update({(module, "set"): _set, (module, "frozenset"): _frozenset, (module, "complex"): _complex,
                      (module, "slice"): slice, (module, "object"): object})
    found.update({
        ("numpy", "ndarray"): _NdarrayType,
        ("numpy", "dtype"): _dtype,
        ("collections", "OrderedDict"): _ordered_dict,
        ("collections", "deque"): collections.deque,
        ("_codecs", "encode"): _latin1_encode,
        ("copyreg", "_reconstructor"): _copyreg_reconstructor,
        ("copy_reg", "_reconstructor"): _copyreg_reconstructor,
        ("copyreg", "__newobj__"): _newobj,
    })
    return found


_SAFE_GLOBALS = _safe_globals()

# ---------------------------------------------------------------------------------------------
# Keys: hashed as they are read, so only kinds whose hash is cheap and cannot be made to collide

#: Python hashes an int modulo this prime, so ints beyond it collide at will (a dict of n of them
#: takes n**2 comparisons to build).
_HASH_MODULUS = sys.hash_info.modulus


def is_safe_key(key: Any) -> bool:
    """Whether ``key`` may be hashed (as a dict key or set element) without cost an attacker sets.

    Tuples are refused: their hash is not cached, so a tuple sharing sub-tuples can take
    exponential time to hash.
    """
    if key is None or isinstance(key, (str, bytes, bool, float)):
        return True
    if type(key) is int:
        return abs(key) < _HASH_MODULUS
    return isinstance(key, Placeholder) or (isinstance(key, type) and issubclass(key, Placeholder))


def _checked_key(key: Any) -> Any:
    if not is_safe_key(key):
        raise pickle.UnpicklingError(f"a dict key or set element of type {type(key).__name__}")
    return key


def _checked_keys(items: Any) -> list[Any]:
    if not isinstance(items, (list, tuple)):
        raise pickle.UnpicklingError("a set of something other than a list")
    return [_checked_key(item) for item in items]


# ---------------------------------------------------------------------------------------------
# The reader


class PickleBudget:
    """What the pickles of one file may still cost: instructions, and distinct names they use.

    Also holds the file's placeholder classes, so that they live as long as its objects and no
    longer (a process-wide cache would grow with every file read).
    """

    def __init__(self, where: str, caps: Limits | None = None) -> None:
        self.where = where
        self.limits = caps or limits()
        self.opcodes = 0
        self.classes: dict[tuple[str, str], type[Placeholder]] = {}

    def count_opcode(self) -> None:
        self.opcodes += 1
        if self.opcodes > self.limits.pickle_opcodes.value:
            raise self.limits.pickle_opcodes.exceeded(self.where)

    def placeholder(self, module: str, name: str) -> type[Placeholder]:
        """The placeholder class for ``module.name``, made on first use."""
        found = self.classes.get((module, name))
        if found is None:
            self.limits.token_chars.check(len(module) + 1 + len(name), self.where)
            self.limits.pickle_globals.check(len(self.classes) + 1, self.where)
            found = type(f"Placeholder[{module}.{name}]", (Placeholder,),
                         {"__slots__": (), "module_name": module, "ref_name": name})
            self.classes[(module, name)] = found
        return found


class _RestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """pickle's pure-Python unpickler, with names resolved to placeholders and each opcode counted.

    The pure-Python unpickler, not the C one: the C unpickler grows its memo to the largest index a
    pickle stores to (one LONG_BINPUT makes it zero gigabytes before anything can look), and its
    opcodes cannot be hooked. This one keeps the memo in a dict and dispatches through a table, which
    this class extends to count instructions and to check BUILD, NEWOBJ, DICT, SETITEMS, APPENDS,
    ADDITEMS, FROZENSET and BYTEARRAY8 before they allocate or hash anything.
    """

    dispatch: ClassVar[dict[int, Any]] = {}

    def __init__(self, data: bytes, budget: PickleBudget) -> None:
        super().__init__(io.BytesIO(data))
        self.budget = budget
        self.data_size = len(data)

    def find_class(self, module: str, name: str) -> Any:
        safe = _SAFE_GLOBALS.get((module, name))
        return safe if safe is not None else self.budget.placeholder(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not supported")

    def load_build(self) -> None:
        state = self.stack.pop()
        target = self.stack[-1]
        if isinstance(target, Placeholder):
            target.state = state
        elif type(target) is np.ndarray:
            _check_array_state(state, self.budget)
            target.__setstate__(state)
        elif isinstance(target, np.dtype):
            _measure(state, self.budget.where, self.budget.limits)
            target.__setstate__(state)
        else:
            raise pickle.UnpicklingError(f"cannot set the state of a {type(target).__name__}")

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(_newobj(cls, *args))

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(_newobj(cls, *args, **kwargs))

    def load_dict(self) -> None:
        items = self.pop_mark()
        self.append({_checked_key(items[index]): items[index + 1] for index in range(0, len(items) - 1, 2)})

    def load_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        self._mapping()[_checked_key(key)] = value

    def load_setitems(self) -> None:
        items = self.pop_mark()
        mapping = self._mapping()
        for index in range(0, len(items) - 1, 2):
            mapping[_checked_key(items[index])] = items[index + 1]

    def _mapping(self) -> Any:
        # Only these, so that a key can never be a slice into a list (L[0:0] = L doubles it).
        target = self.stack[-1]
        if not isinstance(target, (dict, Placeholder)):
            raise pickle.UnpicklingError(f"cannot set items of a {type(target).__name__}")
        return target

    def load_append(self) -> None:
        value = self.stack.pop()
        self._sequence().append(value)

    def load_appends(self) -> None:
        items = self.pop_mark()
        self._sequence().extend(items)

    def _sequence(self) -> Any:
        target = self.stack[-1]
        if not isinstance(target, (list, collections.deque, Placeholder)):
            raise pickle.UnpicklingError(f"cannot append to a {type(target).__name__}")
        return target

    def load_additems(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not set:
            raise pickle.UnpicklingError(f"cannot add items to a {type(target).__name__}")
        target.update(_checked_keys(items))

    def load_frozenset(self) -> None:
        self.append(frozenset(_checked_keys(self.pop_mark())))

    def load_bytearray8(self) -> None:
        # pickle allocates the length it reads before reading the bytes: check it against the data.
        (length,) = struct.unpack("<Q", self.read(8))
        if length > self.data_size:
            raise pickle.UnpicklingError("a bytearray longer than the pickle holding it")
        data = self.read(length)
        if len(data) != length:
            raise pickle.UnpicklingError("pickle data was truncated")
        self.append(bytearray(data))


def _counted(handler: Any) -> Any:
    def count_then_handle(unpickler: _RestrictedUnpickler) -> None:
        unpickler.budget.count_opcode()
        handler(unpickler)

    return count_then_handle


_HOOKS = {
    pickle.BUILD: _RestrictedUnpickler.load_build, pickle.NEWOBJ: _RestrictedUnpickler.load_newobj,
    pickle.NEWOBJ_EX: _RestrictedUnpickler.load_newobj_ex, pickle.SETITEM: _RestrictedUnpickler.load_setitem,
    pickle.SETITEMS: _RestrictedUnpickler.load_setitems, pickle.APPEND: _RestrictedUnpickler.load_append,
    pickle.APPENDS: _RestrictedUnpickler.load_appends, pickle.ADDITEMS: _RestrictedUnpickler.load_additems,
    pickle.FROZENSET: _RestrictedUnpickler.load_frozenset, pickle.BYTEARRAY8: _RestrictedUnpickler.load_bytearray8,
    pickle.DICT: _RestrictedUnpickler.load_dict,
}
_RestrictedUnpickler.dispatch = {
    code: _counted(handler)
    for code, handler in {**pickle._Unpickler.dispatch, **{op[0]: hook for op, hook in _HOOKS.items()}}.items()
}


def _check_array_state(state: Any, budget: PickleBudget) -> None:
    """Check the state numpy's ``ndarray.__setstate__`` will allocate for, before it does."""
    if type(state) is not tuple or len(state) not in (4, 5):
        raise pickle.UnpicklingError("an array state that is not numpy's")
    shape, dtype, _, data = state[-4:]
    count = _array_shape(shape)
    if not isinstance(dtype, np.dtype):
        raise pickle.UnpicklingError("an array without a dtype")
    budget.limits.array_bytes.check(count * max(dtype.itemsize, 1), budget.where)
    if dtype.hasobject:
        if dtype.kind != "O" or type(data) is not list or len(data) != count:
            raise pickle.UnpicklingError("an array of objects whose elements do not fit its shape")
        if any(isinstance(item, np.ndarray) for item in data):
            raise pickle.UnpicklingError("an array of arrays")  # freed recursively, so it could nest deep
    elif not isinstance(data, (bytes, bytearray)) or len(data) != count * dtype.itemsize:
        raise pickle.UnpicklingError("an array whose data does not fit its shape")


def restricted_loads(data: bytes, *, where: str = "a pickle", budget: PickleBudget | None = None) -> Any:
    """Read a pickle without importing or calling anything it names (see :class:`Placeholder`).

    :param budget: shared by the pickles of one file, so that their instructions count together
    """
    return _RestrictedUnpickler(data, budget or PickleBudget(where)).load()


# ---------------------------------------------------------------------------------------------
# What unpickling for real would call

# What unpickling a legitimate SB3 file calls besides the real helpers above.
_ALLOWED_CALLS = {
    "builtins.getattr", "torch.device", "torch.Size", "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor", "torch._utils._rebuild_parameter", "torch.storage._load_from_bytes",
    "torch._tensor._rebuild_from_type_v2", "enum.Enum",
}
_CLOUDPICKLE_MODULES = ("cloudpickle.cloudpickle", "cloudpickle.cloudpickle_fast", "cloudpickle")
_IMPORTING_HELPERS = ("subimport", "dynamic_subimport")


def audit(obj: Any) -> list[str]:
    """What unpickling ``obj``'s pickle for real would call, beyond what SB3 files need.

    Visits each object once (by identity), so it takes time linear in the pickle however often
    the pickle shares a value.
    """
    trusted = trusted_packages()
    problems: set[str] = set()
    seen: set[int] = set()
    stack = [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, Placeholder):
            if item.callee is not None:
                if not _builds_code_object(item.callee):
                    problems.add(f"call the result of {type(item.callee).describe()}")
                stack.append(item.callee)
            elif item.called and not _allowed_call(type(item), item.args, trusted):
                problems.add(f"call {type(item).describe()}{_preview(item.args)}")
            stack.extend([*item.args, *(item.kwargs or {}).values(), item.state, *(item.items or ())])
            for key, value in item.entries or ():
                stack.extend((key, value))
        elif isinstance(item, dict):
            stack.extend([*item.keys(), *item.values()])
        elif isinstance(item, (list, tuple, set, frozenset, collections.deque)):
            stack.extend(item)
        elif isinstance(item, np.ndarray) and item.dtype.hasobject:
            stack.extend(item.ravel().tolist())
    return sorted(problems)


def summarize(problems: list[str], shown: int = 10) -> str:
    """``problems`` as one line, the first ``shown`` of them spelled out."""
    more = f" and {len(problems) - shown} more" if len(problems) > shown else ""
    return ", ".join(problems[:shown]) + more


def _builds_code_object(callee: Placeholder) -> bool:
    # cloudpickle rebuilds functions with _builtin_type("CodeType")(...): building, not running, code
    return type(callee).module_name in _CLOUDPICKLE_MODULES and type(callee).ref_name == "_builtin_type"


def _allowed_call(placeholder: type[Placeholder], args: tuple, trusted: frozenset[str]) -> bool:
    module, name = placeholder.module_name, placeholder.ref_name
    if f"{module}.{name}" in _ALLOWED_CALLS or module.startswith("numpy.random"):
        return True
    if module in _CLOUDPICKLE_MODULES:
        if name in _IMPORTING_HELPERS:
            return bool(args) and isinstance(args[0], str) and args[0].split(".")[0] in trusted
        return True
    # Constructing a class (by convention capitalised) of an installed, trusted package: an Enum
    # member lookup, a NamedTuple, a space. Functions of those packages (torch.load, ...) are refused.
    return module.split(".")[0] in trusted and name[:1].isupper()


def _preview(args: tuple) -> str:
    """The first few plain arguments of a call, short whatever they hold."""
    shown = []
    for arg in args[:4]:
        if isinstance(arg, (str, bytes)):
            shown.append(repr(arg[:40]))
        elif isinstance(arg, float) or (type(arg) is int and arg.bit_length() <= 64):
            shown.append(repr(arg))
    text = f"({', '.join(shown)})"
    return f"{text[:60]}...)" if len(text) > 60 else text


# ---------------------------------------------------------------------------------------------
# Plain data out of what was read

_CONTAINERS = (dict, list, tuple, set, frozenset, collections.deque)
_LEAVES = (bool, int, float, complex, str, bytes, np.generic, np.dtype, slice)


def materialize(value: Any, *, classes: tuple[type, ...] = (), where: str = "a pickled value") -> Any:
    """``value`` as plain Python/numpy data; a placeholder for a class is replaced by the installed
    class when it is a subclass of one of ``classes`` and allow-listed (``imports.resolve_class``),
    else :class:`NotData`.

    Memoised by identity, so a value shared many times is converted once and stays shared; its
    expanded size (each shared value counted every time it is used) is checked against the limits
    first, so that nothing downstream (printing, YAML, JSON) can be made to blow up.
    """
    _measure(value, where, limits())
    memo: dict[int, Any] = {}
    try:
        return _materialize(value, classes, memo)
    except RecursionError:
        raise NotData("a value nested too deeply") from None


def _materialize(value: Any, classes: tuple[type, ...], memo: dict[int, Any]) -> Any:
    if isinstance(value, _CONTAINERS):
        if id(value) not in memo:
            memo[id(value)] = _materialize_container(value, classes, memo)
        return memo[id(value)]
    if isinstance(value, type) and issubclass(value, Placeholder):
        resolved = resolve_class(value.module_name, value.ref_name, classes)
        if resolved is None:
            raise NotData(value.describe())
        return resolved
    if isinstance(value, Placeholder):
        raise NotData(type(value).describe())
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise NotData("an array of Python objects")
        return value
    if value is None or isinstance(value, _LEAVES):
        return value
    raise NotData(type(value).__name__)


def _materialize_container(value: Any, classes: tuple[type, ...], memo: dict[int, Any]) -> Any:
    def convert(item: Any) -> Any:
        return _materialize(item, classes, memo)

    if isinstance(value, collections.OrderedDict):
        return collections.OrderedDict((convert(key), convert(item)) for key, item in value.items())
    if isinstance(value, dict):
        return {convert(key): convert(item) for key, item in value.items()}
    if isinstance(value, collections.deque):
        return collections.deque((convert(item) for item in value), maxlen=value.maxlen)
    return type(value)(convert(item) for item in value)


def _measure(value: Any, where: str, caps: Limits) -> None:
    """Check the expanded size of ``value``: its values, each shared one counted every time it is
    used, and the bytes of its strings and arrays. Linear time (memoised by identity); refuses a
    value that contains itself."""
    sizes: dict[int, tuple[int, int]] = {}  # containers only: id -> (values, bytes)
    open_containers: set[int] = set()  # the containers being measured: the path from the root
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        item, children_measured = stack.pop()
        if not isinstance(item, _CONTAINERS) or (not children_measured and id(item) in sizes):
            continue
        children = [*item.keys(), *item.values()] if isinstance(item, dict) else list(item)
        if children_measured:
            count, size = 1, 0
            for child in children:
                child_count, child_size = sizes.get(id(child)) or (1, _leaf_bytes(child))
                count, size = count + child_count, size + child_size
            sizes[id(item)] = (count, size)
            open_containers.discard(id(item))
            caps.pickle_nodes.check(count, where)
            caps.file_bytes.check(size, where)
        else:
            if id(item) in open_containers:
                raise NotData("a value that contains itself")
            open_containers.add(id(item))
            stack.append((item, True))
            stack.extend((child, False) for child in children
                         if isinstance(child, _CONTAINERS) and id(child) not in sizes)


def _leaf_bytes(value: Any) -> int:
    if isinstance(value, (str, bytes, bytearray)):
        return len(value)
    return value.nbytes if isinstance(value, np.ndarray) else 0


# ---------------------------------------------------------------------------------------------
# The pickles inside torch.save files

#: What ``torch.save`` writes into a file of tensors (state dicts) besides storages and dtypes.
_TENSOR_GLOBALS = {
    ("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor"), ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor_v3"), ("torch._utils", "_rebuild_parameter"),
}


def scan_tensor_pickle(data: bytes, where: str) -> None:
    """Refuse the pickle of a ``torch.save`` file before ``torch.load(weights_only=True)`` reads it,
    if it has more instructions than the limit or names anything but what tensors need.

    torch's own restricted reader allows ``builtins.bytearray`` and ``torch.Tensor``, which allocate
    whatever size the file asks for.
    """
    cap = limits().pickle_opcodes
    try:
        for count, (opcode, argument, _) in enumerate(pickletools.genops(data), start=1):
            if count > cap.value:
                raise cap.exceeded(where)
            if opcode.name in ("GLOBAL", "INST"):
                module, _, name = str(argument).partition(" ")
                if not _is_tensor_global(module, name):
                    raise unsafe(where, f"holds more than tensors (it names {module[:100]}.{name[:100]})")
            elif opcode.name in ("STACK_GLOBAL", "OBJ", "EXT1", "EXT2", "EXT4"):
                raise unsafe(where, f"holds more than tensors (it uses {opcode.name}, which torch.save does not)")
    except ValueError as error:  # not a pickle
        raise UnsafeAgentError(f"{where} cannot be read as tensors ({error})") from None


def _is_tensor_global(module: str, name: str) -> bool:
    if (module, name) in _TENSOR_GLOBALS:
        return True
    if module != "torch":
        return False
    import torch

    if name.endswith("Storage") and name.isidentifier() and name not in ("UntypedStorage", "TypedStorage"):
        return True  # a legacy typed storage: torch's reader maps it to a marker that cannot be called
    return isinstance(vars(torch).get(name), torch.dtype)  # vars: no module __getattr__ runs
