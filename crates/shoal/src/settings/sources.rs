//! Where settings come from, in rising precedence: defaults, the TOML file, `SHOAL_*`
//! variables, flags; and the [`Reader`] that takes each knob out of them, collecting every
//! error instead of stopping at the first.
//!
//! figment merges the layers. Variables and flags enter as the strings they are (figment's
//! own `Env` would guess types, so that `SHOAL_NODE_ID=7` could not be a string); the reader
//! extracts "lossily", turning `"8080"` into a number where a number is asked for.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::de::DeserializeOwned;

/// The variable naming the TOML file.
pub const ENV_CONFIG: &str = "SHOAL_CONFIG";
/// Static tokens (`name=token,name2=token2`), from the environment only: a flag would show
/// them in every process list, and the tokens file is the file's way.
pub const ENV_AUTH_TOKENS: &str = "SHOAL_AUTH_TOKENS";
/// The key ring of multi round-trip requests' `requestState` (a secret: no flag, no file key).
pub const ENV_REQUEST_STATE_KEYS: &str = "SHOAL_REQUEST_STATE_KEYS";
/// The operator API's token (a secret: no flag, no file key).
pub const ENV_ADMIN_TOKEN: &str = "SHOAL_ADMIN_TOKEN";
/// The log filter (read by the binary's telemetry, not a setting of the facade).
pub const ENV_LOG: &str = "SHOAL_LOG";
/// The `--auth oauth` upstream client secret (a secret: never a flag).
pub const ENV_UPSTREAM_CLIENT_SECRET: &str = "SHOAL_UPSTREAM_CLIENT_SECRET";

/// Variables that are not knobs of the file: read elsewhere, never "unknown".
const NOT_KNOBS: [&str; 6] = [
    ENV_CONFIG,
    ENV_UPSTREAM_CLIENT_SECRET,
    ENV_AUTH_TOKENS,
    ENV_REQUEST_STATE_KEYS,
    ENV_ADMIN_TOKEN,
    ENV_LOG,
];

/// The layers' names, as figment's metadata carries them.
const FLAGS: &str = "flags";
const VARIABLES: &str = "variables";
/// figment names its TOML layers "TOML file" and "TOML source string".
const FILE: &str = "TOML";

/// The settings' sources, before anything is checked.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    file: Option<PathBuf>,
    /// The file's text, when given as text (embedded, or fuzzed) instead of a path.
    file_text: Option<String>,
    variables: BTreeMap<String, String>,
    flags: Dict,
}

impl Sources {
    /// No file, no variables, no flags: every knob at its default.
    pub fn empty() -> Sources {
        Sources::default()
    }

    /// The process's `SHOAL_*` variables, and the file `SHOAL_CONFIG` names.
    pub fn from_env() -> Sources {
        Sources::from_variables(std::env::vars())
    }

    /// These variables (those without the `SHOAL_` prefix are ignored), and the file
    /// `SHOAL_CONFIG` names among them. For tests, and for hosts that pass an environment.
    pub fn from_variables(variables: impl IntoIterator<Item = (String, String)>) -> Sources {
        let variables: BTreeMap<String, String> = variables
            .into_iter()
            .filter(|(name, _)| name.starts_with("SHOAL_"))
            .collect();
        let file = variables
            .get(ENV_CONFIG)
            .filter(|path| !path.trim().is_empty())
            .map(PathBuf::from);
        Sources {
            file,
            file_text: None,
            variables,
            flags: Dict::new(),
        }
    }

    /// Reads this TOML file instead of the one `SHOAL_CONFIG` names (a `--config` flag).
    pub fn file(mut self, path: impl Into<PathBuf>) -> Sources {
        self.file = Some(path.into());
        self.file_text = None;
        self
    }

    /// Takes the file's settings from this TOML text instead of a file (a configuration
    /// embedded in a program).
    pub fn file_text(mut self, text: impl Into<String>) -> Sources {
        self.file = Some(PathBuf::from("<config text>"));
        self.file_text = Some(text.into());
        self
    }

    /// A flag's value, the top layer: a knob's key (`max_body_bytes`) and its text as typed.
    pub fn flag(mut self, key: &str, value: impl Into<String>) -> Sources {
        self.flags.insert(key.to_owned(), Value::from(value.into()));
        self
    }

    /// A list flag's values (`--tools a,b`, or a repeated flag).
    pub fn flag_list(mut self, key: &str, values: Vec<String>) -> Sources {
        self.flags.insert(key.to_owned(), Value::from(values));
        self
    }

    /// A switch given on the command line (`--allow-unauthenticated`).
    pub fn switch(mut self, key: &str) -> Sources {
        self.flags.insert(key.to_owned(), Value::from(true));
        self
    }

    /// The value of a variable that is not a knob (e.g. [`ENV_AUTH_TOKENS`]).
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.variables.get(name).map(String::as_str)
    }

    /// Merges the layers and hands out a [`Reader`]. A file that cannot be read or parsed is
    /// an error of its own, reported with the others.
    pub(crate) fn reader(&self) -> Reader<'_> {
        let mut errors = Vec::new();
        let mut figment = Figment::new();
        let mut file_keys = BTreeSet::new();
        let mut file_layer = None;
        if let Some(path) = &self.file {
            let read = match &self.file_text {
                Some(text) => toml_keys(text, path).map(|keys| (keys, Toml::string(text))),
                None => read_file(path).map(|keys| (keys, Toml::file_exact(path))),
            };
            match read {
                Ok((keys, layer)) => {
                    file_keys = keys;
                    file_layer = Some(layer);
                }
                Err(message) => errors.push(SettingError {
                    key: None,
                    origin: Origin::File(path.clone()),
                    message,
                }),
            }
        }
        let variables: Dict = self
            .variables
            .iter()
            .filter(|(name, _)| !NOT_KNOBS.contains(&name.as_str()))
            .map(|(name, value)| (key_of_variable(name), Value::from(value.clone())))
            .collect();
        let variables = Layer {
            name: VARIABLES,
            values: variables,
        };
        let flags = Layer {
            name: FLAGS,
            values: self.flags.clone(),
        };
        let mut layers = Vec::new();
        if let Some(file) = file_layer {
            layers.push(Figment::from(&file));
            figment = figment.merge(file);
        }
        layers.push(Figment::from(&variables));
        layers.push(Figment::from(&flags));
        let figment = figment.merge(variables).merge(flags);
        Reader {
            sources: self,
            figment,
            layers,
            file_keys,
            read: BTreeSet::new(),
            errors,
        }
    }
}

/// Checks that the file exists and is TOML, and lists its keys (to refuse unknown ones).
fn read_file(path: &Path) -> Result<BTreeSet<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("reading config file {}: {error}", path.display()))?;
    toml_keys(&text, path)
}

/// The keys of a TOML text, or why it is not TOML.
fn toml_keys(text: &str, path: &Path) -> Result<BTreeSet<String>, String> {
    let table: toml::Table = toml::from_str(text)
        .map_err(|error| format!("config file {} is not valid: {error}", path.display()))?;
    Ok(table.keys().cloned().collect())
}

/// A layer of strings (variables or flags).
struct Layer {
    name: &'static str,
    values: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

/// The knob a variable sets: `SHOAL_MAX_BODY_BYTES` → `max_body_bytes`.
fn key_of_variable(name: &str) -> String {
    let key = name.trim_start_matches("SHOAL_").to_ascii_lowercase();
    match KNOB_NAME_EXCEPTIONS.iter().find(|(_, _, var)| *var == name) {
        Some((key, _, _)) => (*key).to_owned(),
        None => key,
    }
}

/// Knobs whose flag or variable is not derived from the key: (key, flag, variable).
const KNOB_NAME_EXCEPTIONS: [(&str, &str, &str); 2] = [
    ("tool_scopes", "--tool-scope", "SHOAL_TOOL_SCOPES"),
    (
        "mirror_authorization_server_metadata",
        "--mirror-authorization-server-metadata",
        "SHOAL_MIRROR_AS_METADATA",
    ),
];

/// A knob's flag: `max_body_bytes` → `--max-body-bytes`.
pub fn flag_of(key: &str) -> String {
    match KNOB_NAME_EXCEPTIONS.iter().find(|(k, _, _)| *k == key) {
        Some((_, flag, _)) => (*flag).to_owned(),
        None => format!("--{}", key.replace('_', "-")),
    }
}

/// A knob's variable: `max_body_bytes` → `SHOAL_MAX_BODY_BYTES`.
pub fn variable_of(key: &str) -> String {
    match KNOB_NAME_EXCEPTIONS.iter().find(|(k, _, _)| *k == key) {
        Some((_, _, variable)) => (*variable).to_owned(),
        None => format!("SHOAL_{}", key.to_ascii_uppercase()),
    }
}

/// Takes knobs out of the merged sources, one at a time, keeping every error.
pub struct Reader<'a> {
    sources: &'a Sources,
    figment: Figment,
    /// Each layer alone, lowest first, for knobs that merge across layers.
    layers: Vec<Figment>,
    file_keys: BTreeSet<String>,
    /// Keys asked for: a file key never asked for is unknown.
    read: BTreeSet<String>,
    errors: Vec<SettingError>,
}

impl fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

impl Reader<'_> {
    /// A knob's value, `None` when no layer sets it, or when it does not parse as `T` (the
    /// error is kept).
    pub fn get<T: DeserializeOwned>(&mut self, key: &'static str) -> Option<T> {
        self.mark(key);
        let origin = self.origin(key)?;
        match self.figment.extract_inner_lossy::<T>(key) {
            Ok(value) => Some(value),
            Err(error) => {
                self.errors.push(SettingError {
                    key: Some(key),
                    origin,
                    message: format!("is not valid: {}", error.kind),
                });
                None
            }
        }
    }

    /// A knob parsed from its text with `FromStr` (`127.0.0.1:8080`, `100/s`).
    pub fn parse<T>(&mut self, key: &'static str) -> Option<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let text: String = self.text(key)?;
        match text.trim().parse() {
            Ok(value) => Some(value),
            Err(error) => {
                self.refuse(key, format!("is not valid: {text:?}: {error}"));
                None
            }
        }
    }

    /// A text knob; a number or a switch in the file is taken as its text.
    pub fn text(&mut self, key: &'static str) -> Option<String> {
        self.mark(key);
        self.origin(key)?;
        match self.figment.find_value(key) {
            Ok(Value::String(_, text)) => Some(text),
            Ok(number @ Value::Num(..)) => number.to_i128().map(|n| n.to_string()),
            Ok(Value::Bool(_, switch)) => Some(switch.to_string()),
            Ok(Value::Char(_, c)) => Some(c.to_string()),
            _ => {
                self.refuse(key, "must be a text".to_owned());
                None
            }
        }
    }

    /// A duration such as `30s`, `10m`, `1h 30m`.
    pub fn duration(&mut self, key: &'static str) -> Option<Duration> {
        let text = self.text(key)?;
        match humantime::parse_duration(text.trim()) {
            Ok(duration) => Some(duration),
            Err(error) => {
                self.refuse(
                    key,
                    format!("is not a duration such as 30s or 10m: {text:?} ({error})"),
                );
                None
            }
        }
    }

    /// A list: a TOML array, or text separated by `separator` (variables, flags). Entries are
    /// trimmed; empty ones dropped.
    pub fn list(&mut self, key: &'static str, separator: char) -> Option<Vec<String>> {
        self.mark(key);
        self.origin(key)?;
        let entries = match self.figment.find_value(key) {
            Ok(Value::String(_, text)) => text.split(separator).map(str::to_owned).collect(),
            Ok(Value::Array(_, values)) => {
                let mut entries = Vec::new();
                for value in values {
                    match value.into_string() {
                        Some(text) => entries.push(text),
                        None => {
                            self.refuse(key, "must be a list of texts".to_owned());
                            return None;
                        }
                    }
                }
                entries
            }
            _ => {
                self.refuse(key, "must be a list".to_owned());
                return None;
            }
        };
        Some(
            entries
                .iter()
                .map(|entry| entry.trim().to_owned())
                .filter(|entry| !entry.is_empty())
                .collect(),
        )
    }

    /// A switch; unset is `false`.
    pub fn switch(&mut self, key: &'static str) -> bool {
        self.get::<bool>(key).unwrap_or(false)
    }

    /// Whether any layer sets this knob.
    pub fn is_set(&mut self, key: &'static str) -> bool {
        self.mark(key);
        self.figment.contains(key)
    }

    /// The value each layer holds, lowest first, for knobs that merge across layers
    /// (`tool_scopes`: a flag adds a tool's entry to the file's table).
    pub(crate) fn layered(&mut self, key: &'static str) -> Vec<Value> {
        self.mark(key);
        self.layers
            .iter()
            .filter_map(|layer| layer.find_value(key).ok())
            .collect()
    }

    /// Records that a knob's value is wrong (a check across knobs, or a range).
    pub fn refuse(&mut self, key: &'static str, message: String) {
        let origin = self.origin(key).unwrap_or(Origin::Default);
        self.errors.push(SettingError {
            key: Some(key),
            origin,
            message,
        });
    }

    /// Records an error that is not one knob's (a combination, a variable that is not a knob).
    pub fn fail(&mut self, message: String) {
        self.errors.push(SettingError {
            key: None,
            origin: Origin::Default,
            message,
        });
    }

    /// A variable that is not a knob (e.g. [`ENV_AUTH_TOKENS`]).
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.sources.variable(name)
    }

    /// Where a knob's value comes from; `None` when no layer sets it.
    fn origin(&self, key: &str) -> Option<Origin> {
        let value = self.figment.find_value(key).ok()?;
        let name = self
            .figment
            .get_metadata(value.tag())
            .map(|metadata| metadata.name.to_string());
        Some(match name.as_deref() {
            Some(FLAGS) => Origin::Flag(flag_of(key)),
            Some(VARIABLES) => Origin::Variable(variable_of(key)),
            Some(name) if name.starts_with(FILE) => {
                Origin::File(self.sources.file.clone().unwrap_or_default())
            }
            _ => Origin::Default,
        })
    }

    fn mark(&mut self, key: &str) {
        self.read.insert(key.to_owned());
    }

    /// Ends the reading: unknown file keys are errors, unknown `SHOAL_*` variables warnings
    /// (other tools may share the prefix). Every error found, or the warnings.
    pub(crate) fn finish(mut self) -> Result<Vec<String>, SettingsErrors> {
        let read = std::mem::take(&mut self.read);
        for key in self.file_keys.difference(&read) {
            self.errors.push(SettingError {
                key: None,
                origin: Origin::File(self.sources.file.clone().unwrap_or_default()),
                message: format!(
                    "unknown setting {key:?} (`shoal serve --help` lists every setting)"
                ),
            });
        }
        let warnings = self
            .sources
            .variables
            .keys()
            .filter(|name| {
                !NOT_KNOBS.contains(&name.as_str()) && !read.contains(&key_of_variable(name))
            })
            .map(|name| format!("the variable {name} is not a Shoal setting; it is ignored"))
            .collect();
        if self.errors.is_empty() {
            Ok(warnings)
        } else {
            Err(SettingsErrors(self.errors))
        }
    }
}

/// Which layer a wrong value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A command-line flag.
    Flag(String),
    /// A `SHOAL_*` variable.
    Variable(String),
    /// The TOML file.
    File(PathBuf),
    /// No layer: a default, or a combination of knobs.
    Default,
}

/// One wrong setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The knob's key, when the error is about one knob.
    pub key: Option<&'static str>,
    /// Where the wrong value came from.
    pub origin: Origin,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SettingError {
    /// `<where> <what>`, then the knob's three names: `--max-body-bytes must be at least 1024
    /// (got 10) [flag --max-body-bytes, variable SHOAL_MAX_BODY_BYTES, key max_body_bytes]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(key) = self.key else {
            return match &self.origin {
                Origin::File(path) if !self.message.contains(&*path.to_string_lossy()) => {
                    write!(f, "config file {}: {}", path.display(), self.message)
                }
                _ => f.write_str(&self.message),
            };
        };
        let flag = flag_of(key);
        let source = match &self.origin {
            Origin::Flag(flag) => flag.clone(),
            Origin::Variable(variable) => variable.clone(),
            Origin::File(path) => format!("{key} in {}", path.display()),
            Origin::Default => flag.clone(),
        };
        write!(
            f,
            "{source} {} [flag {flag}, variable {}, key {key} in the config file]",
            self.message,
            variable_of(key),
        )
    }
}

/// Every wrong setting of one start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SettingsErrors(pub Vec<SettingError>);

impl SettingsErrors {
    /// The wrong settings, in the order they were found.
    pub fn errors(&self) -> &[SettingError] {
        &self.0
    }
}

impl fmt::Display for SettingsErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            // One line: all an operator sees of a container that exits at once.
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} settings are wrong:", many.len())?;
                for error in many {
                    write!(f, "\n  - {error}")?;
                }
                Ok(())
            }
        }
    }
}
