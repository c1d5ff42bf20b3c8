"""Loading a downloaded agent as data: nothing from the files is imported, called or unpickled, and
nothing they hold can make rlhub exhaust memory or time.

Stable-Baselines3 stores an agent as a zip whose ``data`` JSON holds cloudpickled objects (spaces,
schedules, the policy class, ...), and VecNormalize statistics as a pickle. Unpickling either runs
whatever code the author put in it. Without ``trust_remote_code`` rlhub instead:

- reads pickles with a restricted reader (:mod:`.pickles`) that builds numpy arrays and plain
  containers only; every class or function a pickle names becomes an inert placeholder that is never
  imported or called. A pickle that would call anything but the constructors SB3 files need (numpy,
  cloudpickle's function rebuilding, SB3/Gymnasium classes) is refused with :class:`UnsafeAgentError`;
- rebuilds the agent as SB3's ``load`` does (:mod:`.model_zip`), but takes the spaces from the
  environment, the policy class and ``policy_kwargs`` from installed classes of allow-listed modules
  (:mod:`.imports`), schedules and other objects from the run's config (or the constructor's
  defaults), and loads tensors with ``torch.load(..., weights_only=True)`` after checking the tensor
  file's table of contents and pickle;
- rebuilds VecNormalize from the statistics (arrays and numbers) in ``vec_normalize.pkl``
  (:mod:`.statistics`);
- reads config files with a YAML safe loader (the RL Zoo's ``OrderedDict`` tag included) and lets
  them name only classes of allow-listed modules, of the kinds a config may name (:mod:`.configs`).

Every read is bounded (:mod:`.limits`, :mod:`.archives`); going over a limit raises
:class:`ResourceLimitError`, whose message names the file, the limit and the environment variable
that raises it:

==================================  ========  ====================================================
Environment variable                Default   Bounds
==================================  ========  ====================================================
``RLHUB_SAFE_MAX_FILE_MB``          128       one file or zip member (also a value's expanded bytes)
``RLHUB_SAFE_MAX_ZIP_MB``           256       all members of one zip together
``RLHUB_SAFE_MAX_ZIP_DIRECTORY_MB`` 1         a zip's table of contents (central directory)
``RLHUB_SAFE_MAX_MODEL_DATA_MB``    8         a model zip's ``data`` JSON
``RLHUB_SAFE_MAX_JSON_MB``          1         a JSON file (manifest, results)
``RLHUB_SAFE_MAX_ARRAY_MB``         128       one array or tensor
``RLHUB_SAFE_MAX_PICKLE_OPCODES``   1000000   pickle instructions in one file
``RLHUB_SAFE_MAX_PICKLE_GLOBALS``   10000     distinct classes and functions one file names
``RLHUB_SAFE_MAX_PICKLE_NODES``     1000000   values in one pickled object, shared ones counted each time
``RLHUB_SAFE_MAX_YAML_MB``          0.25      a YAML document, as written and with aliases expanded
``RLHUB_SAFE_MAX_YAML_NODES``       100000    values in a YAML document, aliases expanded
``RLHUB_SAFE_MAX_TOKEN_CHARS``      4096      one name in a pickle, number in YAML or config expression
``RLHUB_SAFE_MAX_ENV_SECONDS``      10        CPU seconds to build, reset and step the env a manifest's
                                              ``env_kwargs`` describe (:mod:`.env_probe`)
``RLHUB_SAFE_MAX_ENV_MB``           2048      memory for the same
==================================  ========  ====================================================

The modules, each with one job: :mod:`.errors`, :mod:`.limits`, :mod:`.archives` (bounded reads of
files and zip members), :mod:`.pickles` (the restricted reader, ``audit``, ``materialize``),
:mod:`.imports` (the allow-list and the safe importer), :mod:`.model_zip`, :mod:`.statistics`,
:mod:`.configs`, :mod:`.env_probe` (the environment's cost).
"""

from rlhub.safe_loading.archives import read_file_bounded, read_json
from rlhub.safe_loading.configs import (
    check_config_section,
    check_resolved_config,
    config_section,
    load_config,
    load_yaml_text,
    read_yaml,
)
from rlhub.safe_loading.env_probe import check_env_cost
from rlhub.safe_loading.errors import (
    OPT_IN,
    ResourceLimitError,
    UnsafeAgentError,
    unsafe,
)
from rlhub.safe_loading.imports import (
    allowed_modules,
    is_safe_env_module,
    resolve_class,
    safe_import,
    trusted_packages,
)
from rlhub.safe_loading.limits import Limit, Limits, limits
from rlhub.safe_loading.model_zip import load_model, read_model_zip
from rlhub.safe_loading.pickles import (
    NotData,
    Placeholder,
    audit,
    materialize,
    restricted_loads,
)
from rlhub.safe_loading.statistics import (
    read_vec_normalize,
    restore_statistics,
    wrap_vec_normalize,
)

__all__ = [
    "OPT_IN", "Limit", "Limits", "NotData", "Placeholder", "ResourceLimitError", "UnsafeAgentError",
    "allowed_modules", "audit", "check_config_section", "check_env_cost", "check_resolved_config", "config_section",
    "is_safe_env_module", "limits", "load_config", "load_model", "load_yaml_text", "materialize", "read_file_bounded",
    "read_json", "read_model_zip", "read_vec_normalize", "read_yaml", "resolve_class", "restore_statistics",
    "restricted_loads", "safe_import", "trusted_packages", "unsafe", "wrap_vec_normalize",
]
