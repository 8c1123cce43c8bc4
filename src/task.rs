//! The supervised task a model is trained for: it decides what the targets hold, which
//! loss fits, how outputs turn into predictions and which metrics are reported.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The four supervised tasks (the names PyTorch and Keras users know).
///
/// | task | targets per row | output units | prediction |
/// |---|---|---|---|
/// | `Multiclass` | 1 class index in `[0, C)` | C logits | softmax |
/// | `Binary` | 1 value in [0, 1]: 0 or 1, or a soft target | 1 logit | sigmoid |
/// | `Multilabel` | k values in [0, 1]: 0 or 1, or soft targets | k logits | sigmoid per output |
///
/// Binary and multi-label targets are probabilities, as PyTorch's `BCEWithLogitsLoss`
/// takes them: usually 0 or 1, and soft targets (0.5, 0.9, ...) anywhere in [0, 1].
/// Accuracy counts `[output > 0] = [target > 0.5]`; precision, recall, F1 and AUC need
/// targets of exactly 0 or 1.
/// | `Regression` | T real values | T values | identity |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// One of C ≥ 2 exclusive classes (softmax cross-entropy).
    #[default]
    Multiclass,
    /// One target in [0, 1] (0 or 1, or soft) and one output (binary cross-entropy with
    /// logits).
    Binary,
    /// k independent targets in [0, 1] (0 or 1, or soft), one output each (binary
    /// cross-entropy with logits).
    Multilabel,
    /// T real-valued targets, one output each (mean squared error, MAE, Huber).
    Regression,
}

impl Task {
    /// Every task, in the order of the table above.
    pub const ALL: [Task; 4] = [
        Task::Multiclass,
        Task::Binary,
        Task::Multilabel,
        Task::Regression,
    ];

    /// The configuration name: `multiclass`, `binary`, `multilabel`, `regression`.
    pub fn name(self) -> &'static str {
        match self {
            Task::Multiclass => "multiclass",
            Task::Binary => "binary",
            Task::Multilabel => "multilabel",
            Task::Regression => "regression",
        }
    }

    /// Whether the targets are classes (every task but regression).
    pub fn is_classification(self) -> bool {
        self != Task::Regression
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Task {
    type Err = Error;
    /// One of the four names; anything else is [`Error::Hyperparameter`] listing them.
    fn from_str(s: &str) -> Result<Self> {
        Task::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| Error::Hyperparameter {
                name: "task",
                value: crate::error::shown(s),
                expected: "one of multiclass, binary, multilabel, regression",
            })
    }
}
