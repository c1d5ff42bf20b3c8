"""Downloaded config files: YAML read as bounded data, checked, and resolved with the safe importer.

YAML aliases let a 1 kB document stand for a tree of billions of values ("billion laughs"). A
document is therefore composed into its node graph first, its size with every alias expanded is
measured (memoised, so in linear time; a recursive alias is refused), and only a document within
the limits is constructed into Python objects.
"""

from __future__ import annotations

import ast
import datetime
from pathlib import Path
from typing import Any

import yaml

from rlhub.safe_loading.archives import read_file_bounded
from rlhub.safe_loading.errors import UnsafeAgentError, unsafe
from rlhub.safe_loading.imports import (
    config_class_bases,
    import_refusal,
    policy_bases,
    safe_import,
)
from rlhub.safe_loading.limits import Limits, limits
from rlhub.safe_loading.pickles import is_safe_key

# libyaml's parser when PyYAML has it: several times faster, and it limits nesting depth itself.
_SafeBase: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_UnsafeBase: type = getattr(yaml, "CUnsafeLoader", yaml.UnsafeLoader)


class _KeyCheckingConstructor:
    """Builds mappings whose keys hash in O(1) and cannot be made to collide (see ``is_safe_key``)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)  # type: ignore[attr-defined]  # merge keys (<<), as SafeConstructor
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _checked_key(self.construct_object(key_node, deep=deep), key_node)  # type: ignore[attr-defined]
            mapping[key] = self.construct_object(value_node, deep=deep)  # type: ignore[attr-defined]
        return mapping


def _checked_key(key: Any, node: yaml.Node) -> Any:
    if not (is_safe_key(key) or isinstance(key, datetime.date)):
        raise yaml.constructor.ConstructorError(None, None, f"found a mapping key of type {type(key).__name__}",
                                                node.start_mark)
    return key


class _ZooYamlLoader(_KeyCheckingConstructor, _SafeBase):  # type: ignore[misc, valid-type]
    """YAML's safe loader plus the two Python tags the RL Zoo's ``config.yml`` uses (as data)."""


class _TrustedYamlLoader(_KeyCheckingConstructor, _UnsafeBase):  # type: ignore[misc, valid-type]
    """Any Python tag, as the RL Zoo reads its files: for ``trust_remote_code`` only."""


def _ordered_dict(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    # The RL Zoo writes OrderedDict([[key, value], ...]): one argument, a list of pairs.
    arguments = loader.construct_sequence(node, deep=True) if isinstance(node, yaml.SequenceNode) else None
    if arguments == []:
        return {}
    if not (arguments and len(arguments) == 1 and isinstance(arguments[0], list)
            and all(isinstance(pair, (list, tuple)) and len(pair) == 2 for pair in arguments[0])):
        raise yaml.constructor.ConstructorError(None, None, "found an OrderedDict of something other than pairs",
                                                node.start_mark)
    return {_checked_key(key, node): value for key, value in arguments[0]}


_ZooYamlLoader.add_constructor("tag:yaml.org,2002:python/object/apply:collections.OrderedDict", _ordered_dict)
_ZooYamlLoader.add_constructor("tag:yaml.org,2002:python/tuple",
                               lambda loader, node: tuple(loader.construct_sequence(node, deep=True)))


def read_yaml(path: Path, *, trust_remote_code: bool = False) -> Any:
    """A YAML file as data (bounded, see :func:`load_yaml_text`); with ``trust_remote_code`` any
    Python tag, as the RL Zoo reads it."""
    from rlhub.config import ConfigError

    where = Path(path).name
    data = read_file_bounded(path, limits().yaml_bytes, where)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path} is not UTF-8 text: {error}") from None
    return load_yaml_text(text, where, trust_remote_code=trust_remote_code)


def load_yaml_text(text: str, where: str, *, trust_remote_code: bool = False) -> Any:
    """A YAML document as data, within the limits on its size and on its size with aliases expanded.

    :param where: how messages name the document (``config.yml``, ``the front matter of README.md``)
    """
    from rlhub.config import ConfigError

    caps = limits()
    caps.yaml_bytes.check(len(text), where)  # characters: a lower bound of the bytes, and free to count
    caps.yaml_bytes.check(len(text.encode("utf-8", "surrogatepass")), where)
    loader = (_TrustedYamlLoader if trust_remote_code else _ZooYamlLoader)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expanded_size(node, where, caps)
        return loader.construct_document(node)
    except yaml.constructor.ConstructorError as error:
        if "python/" in str(error.problem):
            raise unsafe(where, f"uses a Python tag rlhub reads only as code ({error.problem})") from None
        raise ConfigError(f"{where} is not valid YAML: {error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{where} is not valid YAML: {error}") from None
    except (RecursionError, ValueError, OverflowError, TypeError) as error:  # too deep; a number out of range
        raise ConfigError(f"{where} cannot be read as YAML data ({type(error).__name__}: {str(error)[:200]})") from None
    finally:
        loader.dispose()


_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def _check_expanded_size(root: yaml.Node, where: str, caps: Limits) -> None:
    """Refuse a document that, with its aliases expanded, has more values or characters than the
    limits, refers to itself, or holds a number too long to convert quickly."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, characters), aliases expanded
    open_nodes: set[int] = set()  # the nodes being measured: the path from the root
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_measured = stack.pop()
        if not children_measured and id(node) in sizes:
            continue
        children = _children(node)
        if children_measured:
            count = 1 + sum(sizes[id(child)][0] for child in children)
            characters = len(node.value) if isinstance(node, yaml.ScalarNode) else 0
            characters += sum(sizes[id(child)][1] for child in children)
            sizes[id(node)] = (count, characters)
            open_nodes.discard(id(node))
            caps.yaml_nodes.check(count, where)
            caps.yaml_bytes.check(characters, where)
        else:
            if id(node) in open_nodes:
                raise UnsafeAgentError(f"{where} has an alias that refers to itself (a YAML structure that "
                                       "contains itself): rlhub reads configs as trees")
            if node.tag in _NUMBER_TAGS:
                caps.token_chars.check(len(node.value), where)
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def config_section(document: Any, env_id: str) -> tuple[str, dict[str, Any]]:
    """``(section name, section)`` of a config: rlhub's ``{env_id: section}`` or the RL Zoo's flat one."""
    if not isinstance(document, dict):
        from rlhub.config import ConfigError

        raise ConfigError(f"a config file must hold a mapping of hyperparameters, not {type(document).__name__}")
    for key in (env_id, env_id.split(":", 1)[-1], "default"):
        if isinstance(document.get(key), dict):
            return key, dict(document[key])
    return env_id, dict(document)


_RECORDING = ("Record", "Video", "Monitor")  # wrappers that write files where the config says


def check_config_section(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """A downloaded config section with what playing needs, naming only allow-listed classes.

    Callbacks are dropped (enjoy never trains); every import path must pass
    ``imports.import_refusal`` (checked here without importing anything).
    """
    from rlhub.config import CLASS_KEYS, expand_import_path, import_entries

    section = {key: value for key, value in raw.items() if key != "callback"}
    for key, path in _import_paths(section, where, CLASS_KEYS, import_entries):
        full_path = expand_import_path(path)
        refusal = import_refusal(full_path)
        if refusal is not None:
            raise unsafe(f"{where}, key {key!r}", refusal)
        if key in ("env_wrapper", "vec_env_wrapper") and any(word in full_path for word in _RECORDING):
            raise unsafe(f"{where}, key {key!r}", f"names {path!r}, a wrapper that writes files")
    return section


def _import_paths(section: dict[str, Any], where: str, class_keys: set[str],
                  import_entries: Any) -> list[tuple[str, str]]:
    """``(key, import path)`` for every import path a section names, expressions included."""
    token_cap = limits().token_chars
    paths: list[tuple[str, str]] = []

    def collect_expression(key: str, value: Any) -> None:
        if isinstance(value, str):
            token_cap.check(len(value), f"{where}, key {key!r}")
            try:
                tree = ast.parse(value.strip(), mode="eval")
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                return  # rlhub.config reports it
            inner = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
            paths.extend((key, ast.unparse(node)) for node in ast.walk(tree)
                         if isinstance(node, (ast.Name, ast.Attribute)) and id(node) not in inner
                         and not (isinstance(node, ast.Name) and node.id in ("dict", "True", "False", "None")))
        elif isinstance(value, dict):
            for name, item in value.items():
                if name in class_keys and isinstance(item, str):
                    paths.append((f"{key}.{name}", item))
                elif isinstance(item, (dict, str)) and (str(name).endswith("_kwargs") or name in class_keys):
                    collect_expression(f"{key}.{name}", item)

    for key, value in section.items():
        if key == "policy" and isinstance(value, str) and "." in value:
            paths.append((key, value))
        elif key in ("env_wrapper", "vec_env_wrapper"):
            paths.extend((key, path) for path, _ in import_entries(value))
        elif key in class_keys and isinstance(value, str):
            paths.append((key, value))
        elif str(key).endswith("_kwargs") or key == "normalize":
            collect_expression(key, value)
    return paths


def check_resolved_config(config: Any, where: str) -> None:
    """Every class a resolved downloaded config names is of a kind configs may name."""
    import gymnasium as gym
    from stable_baselines3.common.vec_env import VecEnvWrapper

    from rlhub.config import WrapperChain

    bases = config_class_bases()
    for chain, base in ((config.env_wrapper, gym.Wrapper), (config.vec_env_wrapper, VecEnvWrapper)):
        if isinstance(chain, WrapperChain):
            for wrapper, _ in chain.wrappers:
                if not (isinstance(wrapper, type) and issubclass(wrapper, base)):
                    raise unsafe(f"{where}", f"names {wrapper!r} as a wrapper, which is not a {base.__name__}")
                if any(word in wrapper.__name__ for word in _RECORDING):
                    raise unsafe(f"{where}", f"names {wrapper.__name__}, a wrapper that writes files")
    if not isinstance(config.policy, str) and not issubclass(config.policy, policy_bases()):
        raise unsafe(f"{where}", f"names {config.policy!r} as the policy, which is not an SB3 policy class")
    stack: list[Any] = list(config.hyperparams.values())
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
        elif isinstance(value, type):
            if not issubclass(value, bases):
                raise unsafe(f"{where}", f"names {value!r}, which is not a class a config may name")
        elif callable(value) and type(value).__module__.split(".")[0] not in ("stable_baselines3", "rlhub"):
            raise unsafe(f"{where}", f"holds the callable {value!r}")


#: Config keys naming files training reads.
_FILES_TO_LEARN_FROM = ("dataset", "reward_model")


def load_config(path: Path, algo_id: str, env_id: str, algo_class: type) -> Any:
    """A downloaded config as a :class:`~rlhub.config.ZooConfig`, read and checked as data; every
    class it names is imported with the allow-listed importer (``imports.safe_import``). The files it
    names to learn from (``dataset``, ``reward_model``) are dropped: a download may not choose what
    this machine reads; whoever continues its training names them (``--dataset``, ``-params``)."""
    from rlhub.config import resolve_section

    name, section = config_section(read_yaml(path), env_id)
    where = f"{Path(path).name}, env {name}"
    section = check_config_section(section, where)
    section = {key: value for key, value in section.items() if key not in _FILES_TO_LEARN_FROM}

    def importer(import_path: str) -> Any:
        return safe_import(import_path, where=where)

    config = resolve_section(algo_id, env_id, algo_class, section, source=Path(path), section=name,
                             importer=importer)
    check_resolved_config(config, where)
    return config
