//! Checkpoints as safetensors files.
//!
//! Tensors are named like PyTorch's `nn.Sequential.state_dict()`: `0.weight` (a linear
//! weight is stored [out, in], transposed from shadeprop's [in, out]), `0.bias`,
//! `1.weight` / `1.bias` (batch-norm gamma / beta), `1.running_mean`, `1.running_var`,
//! `1.num_batches_tracked` (int64). Optimizer state follows under `optimizer.` (momentum as
//! `optimizer.momentum.<name>`, Adam's moments as `optimizer.exp_avg.<name>` and
//! `optimizer.exp_avg_sq.<name>`), and a callback's device snapshot (EarlyStopping's best
//! weights) as `callback.<callback>.{params,velocity,second_moment,state}`; mixed precision
//! adds the loss-scaling state as `optimizer.loss_scale` (and `callback.<callback>.loss_scale`).
//! In PyTorch:
//!
//! ```text
//! sd = safetensors.torch.load_file("best.safetensors")
//! model.load_state_dict({k: v for k, v in sd.items() if not k.startswith(("optimizer.", "callback."))})
//! ```
//!
//! Metadata (all strings): `format` = "shadeprop-checkpoint", `version` = "1", `model`
//! (parameter names and shapes: a checkpoint only loads into the same model), `seed`,
//! `step`, `applied_steps` (updates not skipped for a non-finite gradient; also
//! `callback.<callback>.applied_steps`), `epoch` (epochs completed), `optimizer`, `standardizer`, `history` and
//! `callbacks` (JSON), `checksum` (FNV-1a 64 of every tensor's bytes in name order, so a
//! flipped byte is detected) and `metadata_checksum` (FNV-1a 64 of every other metadata
//! key and value, `checksum` included, in byte order of the keys: see
//! [`metadata_checksum`]), so an edited standardizer, step or optimizer is detected too.
//! Files written before `metadata_checksum` existed have no such key and still load; when
//! the key is present it is verified before anything else is read. Writes go to a
//! temporary file in the same folder, are flushed, then renamed over the target: a reader
//! never sees a half-written checkpoint.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde_json::Value;

use crate::data::Scaler;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::plan::Layout;
use crate::session::{Session, Snapshot};

/// The `format` metadata key's value in every checkpoint.
pub const FORMAT: &str = "shadeprop-checkpoint";
/// The checkpoint format's version (`version` metadata key).
pub const VERSION: &str = "1";

/// Everything but the device tensors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Meta {
    /// Epochs completed when the checkpoint was written.
    pub epoch: u64,
    /// Batches of the next epoch already trained (non-zero after a Ctrl-C mid-epoch).
    pub batch: usize,
    /// The training history so far (JSON array of epoch logs).
    pub history: Value,
    /// Each callback's state, by callback name.
    pub callbacks: Value,
    pub standardizer: Option<Scaler>,
    /// The fitted tabular preprocessing ([`crate::data::tabular::Preprocessor`] as JSON),
    /// when the run read a CSV file; absent in checkpoints of other runs.
    pub preprocessing: Option<Value>,
    /// After an interrupt mid-epoch: the metrics of that epoch's batches trained so far
    /// and the learning rate it started with (`loss`, `accuracy`, `mae`, `samples`,
    /// `weight`, `steps`, `lr`), so that the resumed epoch logs what an uninterrupted one
    /// would. None at epoch ends.
    pub partial: Option<Value>,
}

fn err(path: &Path, what: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// A description of the model's parameters; a checkpoint only loads into a model with the
/// same one.
pub fn model_signature(g: &Graph) -> String {
    g.params
        .iter()
        .map(|p| format!("{}:{}x{}", p.name, p.shape.rows_at(1), p.shape.cols))
        .collect::<Vec<_>>()
        .join(";")
}

/// (name, shape, flat-buffer offset, rows, cols, transposed) for each parameter segment.
struct SegmentMap {
    name: String,
    shape: Vec<usize>,
    off: usize,
    rows: usize,
    cols: usize,
    transpose: bool,
}

fn segments(g: &Graph, layout: &Layout) -> Vec<SegmentMap> {
    let mut v = vec![];
    for (pid, p) in g.params.iter().enumerate() {
        let mut off = layout.param_off[pid];
        let (rows, cols) = (p.shape.rows_at(1), p.shape.cols);
        for seg in &p.segments {
            // A weight matrix (`.weight`, or a recurrent layer's `.weight_ih_l0`), stored
            // [in, out]: PyTorch's is [out, in].
            let last = seg.name.rsplit('.').next().unwrap_or_default();
            // An embedding table is stored [vocab, dim], as PyTorch stores it.
            let table = g.is_embedding_table(pid);
            let matrix = p.segments.len() == 1
                && !table
                && (rows > 1 || seg.torch_shape.is_some())
                && (last == "weight"
                    || last.starts_with("weight_ih_l")
                    || last.starts_with("weight_hh_l"));
            let shape = match (&seg.torch_shape, matrix) {
                (Some(t), true) => t.clone(),
                (None, true) => vec![cols, rows],
                _ if table => vec![rows, cols],
                _ => vec![seg.len],
            };
            v.push(SegmentMap {
                name: seg.name.clone(),
                shape,
                off,
                rows,
                cols,
                transpose: matrix,
            });
            off += seg.len;
        }
    }
    v
}

fn export(m: &SegmentMap, flat: &[f32]) -> Vec<f32> {
    let len: usize = m.shape.iter().product();
    let src = &flat[m.off..m.off + len];
    if !m.transpose {
        return src.to_vec();
    }
    // [rows=in, cols=out] → [out, in]
    (0..len)
        .map(|i| src[(i % m.rows) * m.cols + i / m.rows])
        .collect()
}

fn import(m: &SegmentMap, data: &[f32], flat: &mut [f32]) {
    let len = data.len();
    if !m.transpose {
        flat[m.off..m.off + len].copy_from_slice(data);
        return;
    }
    for i in 0..len {
        flat[m.off + (i % m.rows) * m.cols + i / m.rows] = data[i];
    }
}

/// State buffers: (layer prefix, offset, channels) of each batch-norm layer.
fn bn_states(g: &Graph, layout: &Layout) -> Vec<(String, usize, usize)> {
    g.states
        .iter()
        .enumerate()
        .filter(|(_, s)| s.name.ends_with(".running_mean+running_var"))
        .map(|(i, s)| {
            let prefix = s
                .name
                .trim_end_matches(".running_mean+running_var")
                .to_string();
            (prefix, layout.state_off[i], s.len / 2)
        })
        .collect()
}

fn fnv1a(h: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *h ^= b as u64;
        *h = h.wrapping_mul(0x100_0000_01b3);
    }
}

/// FNV-1a 64's offset basis, where every checksum starts.
const FNV_BASIS: u64 = 0xcbf2_9ce4_8422_2325;

/// The metadata key holding [`metadata_checksum`].
pub const METADATA_CHECKSUM: &str = "metadata_checksum";

/// The checksum of a file's metadata, as 16 lowercase hex digits: FNV-1a 64 over every key
/// but [`METADATA_CHECKSUM`] itself, keys in byte order, each entry fed as the key's length
/// (u64 little-endian), the key's bytes, the value's length (u64 little-endian) and the
/// value's bytes — so no two different sets of entries feed the same bytes. It covers
/// `checksum`, the tensor bytes' checksum, and with it the whole file.
pub fn metadata_checksum(md: &HashMap<String, String>) -> String {
    let mut keys: Vec<&String> = md.keys().filter(|k| *k != METADATA_CHECKSUM).collect();
    keys.sort();
    let mut h = FNV_BASIS;
    for k in keys {
        let v = &md[k];
        fnv1a(&mut h, &(k.len() as u64).to_le_bytes());
        fnv1a(&mut h, k.as_bytes());
        fnv1a(&mut h, &(v.len() as u64).to_le_bytes());
        fnv1a(&mut h, v.as_bytes());
    }
    format!("{h:016x}")
}

/// The checksum of every tensor's bytes, tensors in name order, as 16 lowercase hex
/// digits (the `checksum` metadata key).
fn tensor_checksum(st: &SafeTensors<'_>, path: &Path) -> Result<String> {
    let mut names: Vec<&str> = st.names();
    names.sort();
    let mut h = FNV_BASIS;
    for n in &names {
        let t = st
            .tensor(n)
            .map_err(|e| err(path, format!("tensor {n}: {e}")))?;
        fnv1a(&mut h, t.data());
    }
    Ok(format!("{h:016x}"))
}

/// Verify `checksum`, the tensor bytes' checksum, when the file has one (or always with
/// `require_tensor_checksum`); `metadata_checksum` was verified when the file was opened
/// ([`open`]). Errors name both values.
fn verify_checksums(
    st: &SafeTensors<'_>,
    md: &HashMap<String, String>,
    path: &Path,
    require_tensor_checksum: bool,
) -> Result<()> {
    let recorded = match md.get("checksum") {
        Some(c) => c,
        None if require_tensor_checksum => {
            return Err(err(path, "metadata key \"checksum\" missing"));
        }
        None => return Ok(()),
    };
    let got = tensor_checksum(st, path)?;
    if &got != recorded {
        return Err(err(
            path,
            format!("checksum {got} does not match the recorded {recorded}: the file is corrupt"),
        ));
    }
    Ok(())
}

/// Add `checksum` (of `all`'s tensor bytes, in name order) and `metadata_checksum` (of
/// every other key) to `md`.
fn seal(all: &[(String, Owned)], md: &mut HashMap<String, String>) {
    let mut sorted: Vec<&(String, Owned)> = all.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = FNV_BASIS;
    for (_, t) in sorted {
        fnv1a(&mut h, &t.bytes);
    }
    md.insert("checksum".into(), format!("{h:016x}"));
    let m = metadata_checksum(md);
    md.insert(METADATA_CHECKSUM.into(), m);
}

struct Owned {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

fn f32s(shape: Vec<usize>, v: &[f32]) -> Owned {
    Owned {
        dtype: Dtype::F32,
        shape,
        bytes: bytemuck::cast_slice(v).to_vec(),
    }
}

/// (offset, length) pairs in a flat buffer.
type Spans = Vec<(usize, usize)>;

/// (offset, length) of every parameter in the layout's flat parameter buffers, and of
/// every state tensor in its state buffer: the gaps between them (alignment) depend on
/// the backend, so flat vectors are written without them ([`pack`]).
fn spans(g: &Graph, layout: &Layout) -> (Spans, Spans) {
    (
        layout
            .param_off
            .iter()
            .zip(&g.params)
            .map(|(&o, p)| (o, p.shape.numel(0)))
            .collect(),
        layout
            .state_off
            .iter()
            .zip(&g.states)
            .map(|(&o, s)| (o, s.len))
            .collect(),
    )
}

/// The values of `spans` in `flat`, one after another (empty for an empty `flat`).
fn pack(spans: &[(usize, usize)], flat: &[f32]) -> Vec<f32> {
    if flat.is_empty() {
        return vec![];
    }
    spans
        .iter()
        .flat_map(|&(o, n)| flat[o..o + n].iter().copied())
        .collect()
}

/// [`pack`] undone into a flat buffer of `len` values (zero in the gaps).
fn unpack(spans: &[(usize, usize)], len: usize, packed: &[f32]) -> Vec<f32> {
    let mut v = vec![0.0; len];
    let mut k = 0;
    for &(o, n) in spans {
        v[o..o + n].copy_from_slice(&packed[k..k + n]);
        k += n;
    }
    v
}

/// All tensors of a session snapshot, by name.
fn tensors(
    g: &Graph,
    layout: &Layout,
    snap: &Snapshot,
    adam: bool,
    callbacks: &[(String, Snapshot)],
) -> Vec<(String, Owned)> {
    let mut out = vec![];
    let segs = segments(g, layout);
    for m in &segs {
        out.push((
            m.name.clone(),
            f32s(m.shape.clone(), &export(m, &snap.params)),
        ));
        let (first, second) = if adam {
            ("exp_avg", Some("exp_avg_sq"))
        } else {
            ("momentum", None)
        };
        out.push((
            format!("optimizer.{first}.{}", m.name),
            f32s(m.shape.clone(), &export(m, &snap.velocity)),
        ));
        if let Some(second) = second {
            out.push((
                format!("optimizer.{second}.{}", m.name),
                f32s(m.shape.clone(), &export(m, &snap.second_moment)),
            ));
        }
    }
    for (prefix, off, c) in bn_states(g, layout) {
        out.push((
            format!("{prefix}.running_mean"),
            f32s(vec![c], &snap.state[off..off + c]),
        ));
        out.push((
            format!("{prefix}.running_var"),
            f32s(vec![c], &snap.state[off + c..off + 2 * c]),
        ));
        let steps = (snap.step as i64).to_le_bytes().to_vec();
        out.push((
            format!("{prefix}.num_batches_tracked"),
            Owned {
                dtype: Dtype::I64,
                shape: vec![],
                bytes: steps,
            },
        ));
    }
    if !snap.loss_scale.is_empty() {
        // Mixed precision: (S, 1/S, finite steps in a row, skipped steps), so that a
        // resumed run scales exactly as the uninterrupted one would.
        out.push((
            "optimizer.loss_scale".into(),
            f32s(vec![snap.loss_scale.len()], &snap.loss_scale),
        ));
    }
    // Callback snapshots (e.g. early stopping's best weights) as flat vectors without
    // the backend's alignment gaps, so that a run resumes on another backend.
    let (ps, ss) = spans(g, layout);
    for (name, cs) in callbacks {
        for (part, v) in [
            ("params", pack(&ps, &cs.params)),
            ("velocity", pack(&ps, &cs.velocity)),
            ("second_moment", pack(&ps, &cs.second_moment)),
            ("state", pack(&ss, &cs.state)),
        ] {
            out.push((format!("callback.{name}.{part}"), f32s(vec![v.len()], &v)));
        }
        if !cs.loss_scale.is_empty() {
            out.push((
                format!("callback.{name}.loss_scale"),
                f32s(vec![cs.loss_scale.len()], &cs.loss_scale),
            ));
        }
        out.push((
            format!("callback.{name}.step"),
            Owned {
                dtype: Dtype::I64,
                shape: vec![],
                bytes: (cs.step as i64).to_le_bytes().to_vec(),
            },
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Serialize named tensors with metadata as safetensors and write them to `path`
/// atomically.
fn write_tensors(path: &Path, all: &[(String, Owned)], md: HashMap<String, String>) -> Result<()> {
    let views: Vec<(String, TensorView<'_>)> = all
        .iter()
        .map(|(n, t)| {
            TensorView::new(t.dtype, t.shape.clone(), &t.bytes)
                .map(|v| (n.clone(), v))
                .map_err(|e| err(path, format!("tensor {n}: {e}")))
        })
        .collect::<Result<_>>()?;
    let bytes = safetensors::tensor::serialize(views, Some(md))
        .map_err(|e| err(path, format!("serialize: {e}")))?;
    crate::fs::write_atomic(path, &bytes)
}

/// Write a checkpoint of `s` atomically.
pub fn save(
    path: &Path,
    s: &mut Session,
    meta: &Meta,
    callbacks: &[(String, Snapshot)],
) -> Result<()> {
    let snap = s.snapshot()?;
    let adam = s.optimizer().is_adam();
    let all = tensors(s.graph(), s.layout(), &snap, adam, callbacks);
    let mut md: HashMap<String, String> = HashMap::new();
    md.insert("format".into(), FORMAT.into());
    md.insert("version".into(), VERSION.into());
    md.insert("model".into(), model_signature(s.graph()));
    md.insert("seed".into(), s.seed().to_string());
    md.insert("precision".into(), s.layout().precision().name().into());
    md.insert("step".into(), snap.step.to_string());
    md.insert("applied_steps".into(), snap.applied_steps.to_string());
    for (name, cs) in callbacks {
        md.insert(
            format!("callback.{name}.applied_steps"),
            cs.applied_steps.to_string(),
        );
    }
    md.insert("epoch".into(), meta.epoch.to_string());
    md.insert("batch".into(), meta.batch.to_string());
    md.insert("optimizer".into(), format!("{:?}", s.optimizer()));
    md.insert(
        "standardizer".into(),
        meta.standardizer
            .as_ref()
            .map(|z| z.to_json())
            .unwrap_or(Value::Null)
            .to_string(),
    );
    if let Some(p) = &meta.partial {
        md.insert("partial_epoch".into(), p.to_string());
    }
    if let Some(p) = &meta.preprocessing {
        md.insert("preprocessing".into(), p.to_string());
    }
    md.insert("history".into(), meta.history.to_string());
    md.insert("callbacks".into(), meta.callbacks.to_string());
    seal(&all, &mut md);
    write_tensors(path, &all, md)
}

/// The tensors and metadata of a safetensors file, its `metadata_checksum` verified when
/// it has one ([`verify_checksums`] checks the tensor bytes later, where they are read).
/// `expected` names the tensors the reader needs (empty when it does not know them): a
/// header that lacks one of them is reported by that name ([`explain_layout`]).
fn open<'a>(
    bytes: &'a [u8],
    path: &Path,
    expected: &[String],
) -> Result<(SafeTensors<'a>, HashMap<String, String>)> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        let why = explain_layout(bytes, expected).unwrap_or_else(|| e.to_string());
        err(path, format!("not a readable safetensors file: {why}"))
    })?;
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| err(path, format!("unreadable header: {e}")))?;
    let md = header.metadata().clone().unwrap_or_default();
    if let Some(recorded) = md.get(METADATA_CHECKSUM) {
        let got = metadata_checksum(&md);
        if &got != recorded {
            return Err(err(
                path,
                format!(
                    "metadata checksum {got} does not match the recorded {METADATA_CHECKSUM} {recorded}: the header's metadata (standardizer, step, optimizer, history, ...) was edited or is corrupt"
                ),
            ));
        }
    }
    Ok((st, md))
}

/// Why the tensor entries of a safetensors header do not describe the file's data, named
/// by the tensor at fault. The safetensors crate names the tensor that follows a gap or an
/// overlap in the data offsets, which is not the one at fault when an entry was removed
/// from the header (it names the next tensor) or another entry's offsets were edited. In
/// order: tensors of `expected` missing from the header (with the data bytes no entry
/// claims); an entry whose offsets do not span its dtype and shape; an entry whose offsets
/// differ from where the other entries' sizes put it (in the order safetensors writes:
/// dtype, then name), when it is the only one; otherwise the first gap or overlap between
/// entries, or data past the last entry or missing after it. None when the header cannot
/// be read (the caller then reports the crate's own message).
fn explain_layout(bytes: &[u8], expected: &[String]) -> Option<String> {
    use safetensors::tensor::TensorInfo;
    let n = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let body = bytes.get(8..8usize.checked_add(n)?)?;
    let data_len = bytes.len() - 8 - n;
    let header: serde_json::Map<String, Value> = serde_json::from_slice(body).ok()?;
    // (name, info, bytes its dtype and shape take)
    let mut entries: Vec<(String, TensorInfo, usize)> = vec![];
    for (name, v) in header {
        if name == "__metadata__" {
            continue;
        }
        let info: TensorInfo = serde_json::from_value(v).ok()?;
        let bits = info
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))?
            .checked_mul(info.dtype.bitsize())?;
        entries.push((name, info, bits.div_ceil(8)));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    // Byte ranges of the data that no entry claims, with the entry after each.
    let mut by_start: Vec<&(String, TensorInfo, usize)> = entries.iter().collect();
    by_start.sort_by_key(|e| e.1.data_offsets);
    let mut cursor = 0usize;
    let mut gaps: Vec<(usize, usize, Option<&str>)> = vec![];
    for (name, info, _) in &by_start {
        let (s, e) = info.data_offsets;
        if s > cursor {
            gaps.push((cursor, s, Some(name.as_str())));
        }
        cursor = cursor.max(e);
    }
    if data_len > cursor {
        gaps.push((cursor, data_len, None));
    }
    let unclaimed = |gaps: &[(usize, usize, Option<&str>)]| -> String {
        gaps.iter()
            .take(3)
            .map(|(a, b, next)| {
                format!(
                    "data bytes [{a}, {b}) ({} bytes{}) belong to no entry",
                    b - a,
                    next.map_or(String::new(), |n| format!(", before {n}"))
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let missing: Vec<&String> = expected
        .iter()
        .filter(|x| !entries.iter().any(|e| &e.0 == *x))
        .collect();
    if !missing.is_empty() {
        let list: Vec<&str> = missing.iter().take(10).map(|m| m.as_str()).collect();
        return Some(format!(
            "the header has no entry for tensor{} {}{}{}",
            if missing.len() > 1 { "s" } else { "" },
            list.join(", "),
            if missing.len() > 10 { ", …" } else { "" },
            if gaps.is_empty() {
                String::new()
            } else {
                format!(" ({})", unclaimed(&gaps))
            }
        ));
    }
    for (name, info, size) in &entries {
        let (s, e) = info.data_offsets;
        if e < s || e - s != *size {
            return Some(format!(
                "tensor {name} has data_offsets [{s}, {e}], {} bytes, but its dtype {:?} and shape {:?} take {size}",
                e.saturating_sub(s),
                info.dtype,
                info.shape
            ));
        }
    }
    // Where the writer's order (safetensors: dtype descending, then name) puts each entry,
    // when the sizes fill the data exactly.
    let mut canonical: Vec<&(String, TensorInfo, usize)> = entries.iter().collect();
    canonical.sort_by(|a, b| b.1.dtype.cmp(&a.1.dtype).then(a.0.cmp(&b.0)));
    let mut at = 0usize;
    let mut moved = vec![];
    for (name, info, size) in &canonical {
        let end = at.saturating_add(*size);
        if info.data_offsets != (at, end) {
            moved.push((name, info.data_offsets, (at, end)));
        }
        at = end;
    }
    if at == data_len
        && let [(name, (s, e), (cs, ce))] = moved[..]
    {
        return Some(format!(
            "tensor {name} has data_offsets [{s}, {e}], where the other entries leave [{cs}, {ce}]"
        ));
    }
    let mut end = 0usize;
    let mut prev: Option<&str> = None;
    for (name, info, _) in &by_start {
        let (s, e) = info.data_offsets;
        if s < end {
            return Some(format!(
                "tensor {name} has data_offsets [{s}, {e}], overlapping {}, which ends at {end}",
                prev.unwrap_or("the previous entry")
            ));
        }
        end = e;
        prev = Some(name.as_str());
    }
    if !gaps.is_empty() {
        return Some(format!(
            "{}: an entry is missing from the header",
            unclaimed(&gaps)
        ));
    }
    if cursor > data_len {
        return Some(format!(
            "the entries reach data byte {cursor}, the data holds {data_len} bytes: the file is truncated"
        ));
    }
    None
}

/// Load a checkpoint into `s` (parameters, optimizer state, running statistics, step) and
/// return its metadata and the callbacks' snapshots. Validates format, version, model,
/// checksums, names, shapes and dtypes, and the values (finite; running variances, second
/// moments and counts >= 0, callback snapshots included), with an error naming what is
/// wrong.
pub fn load(path: &Path, s: &mut Session) -> Result<(Meta, Vec<(String, Snapshot)>)> {
    let bytes = crate::fs::read_file(path, crate::fs::MAX_CHECKPOINT_BYTES)?;
    load_bytes(&bytes, path, s)
}

/// The output units of the model a checkpoint holds, read without a session: the width
/// of its last parameter (the output layer's bias, or its weight `[in, out]` without one),
/// from the `model` signature ([`model_signature`]).
/// Errors: an unreadable file or header, a checkpoint without a model signature.
pub fn output_units(path: &Path) -> Result<usize> {
    let bytes = crate::fs::read_file(path, crate::fs::MAX_CHECKPOINT_BYTES)?;
    let (_, md) = open(&bytes, path, &[])?;
    md.get("model")
        .and_then(|m| m.rsplit(';').next())
        .and_then(|last| last.rsplit(':').next())
        .and_then(|shape| shape.split('x').nth(1))
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|&c| c > 0)
        .ok_or_else(|| {
            err(
                path,
                "metadata \"model\" missing or malformed: cannot tell the output units",
            )
        })
}

/// The input preprocessing stored in a checkpoint, read without a session: the input
/// scaling (`standardizer`) and the fitted CSV preprocessing (`preprocessing`, JSON), each
/// None when absent. What prediction from raw rows needs before the model is built.
/// Errors: an unreadable file or header, or a value that is not the JSON it should be.
pub fn read_preprocessing(path: &Path) -> Result<(Option<Scaler>, Option<Value>)> {
    let bytes = crate::fs::read_file(path, crate::fs::MAX_CHECKPOINT_BYTES)?;
    let (_, md) = open(&bytes, path, &[])?;
    let json = |k: &str| -> Result<Option<Value>> {
        md.get(k)
            .map(|v| serde_json::from_str(v).map_err(|e| err(path, format!("metadata {k}: {e}"))))
            .transpose()
    };
    let scaler = match json("standardizer")? {
        None | Some(Value::Null) => None,
        Some(v) => {
            Some(Scaler::try_from_json(&v).map_err(|e| err(path, format!("standardizer: {e}")))?)
        }
    };
    Ok((scaler, json("preprocessing")?))
}

/// A snapshot check's error ([`Session::check_snapshot`]) as [`Error::Checkpoint`] naming
/// the file, `context` before it; other errors as they are.
fn in_file(path: &Path, e: Error, context: &str) -> Error {
    match e {
        Error::NonFiniteParameter { .. } | Error::ParameterDomain { .. } | Error::Shape { .. } => {
            err(path, format!("{context}{e}"))
        }
        e => e,
    }
}

/// The value of the I64 scalar tensor `name` (`data`, its bytes), a count: >= 0, else
/// [`Error::Checkpoint`] naming the tensor and the value.
fn count(path: &Path, name: &str, data: &[u8]) -> Result<u64> {
    let v = i64::from_le_bytes(
        data.try_into()
            .map_err(|_| err(path, format!("tensor {name} is not one int64")))?,
    );
    u64::try_from(v).map_err(|_| {
        err(
            path,
            Error::ParameterDomain {
                tensor: name.into(),
                index: 0,
                value: v as f64,
                expected: "a count >= 0",
            }
            .to_string(),
        )
    })
}

/// The names of the tensors a checkpoint of `s` holds besides callback snapshots:
/// parameters, batch-norm buffers, optimizer state and, in mixed precision, the
/// loss-scaling state.
fn expected_names(s: &Session) -> Vec<String> {
    let (g, layout) = (s.graph(), s.layout());
    let adam = s.optimizer().is_adam();
    let n = layout.params_len;
    let zeros = Snapshot {
        params: vec![0.0; n],
        velocity: vec![0.0; n],
        second_moment: if adam { vec![0.0; n] } else { vec![] },
        state: vec![0.0; layout.state_len],
        step: 0,
        applied_steps: 0,
        loss_scale: if layout.mixed.is_some() {
            vec![0.0; 4]
        } else {
            vec![]
        },
    };
    tensors(g, layout, &zeros, adam, &[])
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

/// [`load`] from bytes already read (`path` only names the source in errors).
pub fn load_bytes(
    bytes: &[u8],
    path: &Path,
    s: &mut Session,
) -> Result<(Meta, Vec<(String, Snapshot)>)> {
    let (st, md) = open(bytes, path, &expected_names(s))?;
    let get = |k: &str| {
        md.get(k)
            .cloned()
            .ok_or_else(|| err(path, format!("metadata key {k:?} missing")))
    };
    if get("format")? != FORMAT {
        return Err(err(
            path,
            format!("format {:?}, expected {FORMAT:?}", get("format")?),
        ));
    }
    if get("version")? != VERSION {
        return Err(err(
            path,
            format!("format version {:?}, expected {VERSION:?}", get("version")?),
        ));
    }
    let want_model = model_signature(s.graph());
    if get("model")? != want_model {
        return Err(err(
            path,
            format!(
                "written for model [{}], this model is [{want_model}]",
                get("model")?
            ),
        ));
    }
    verify_checksums(&st, &md, path, true)?;
    let mut names: Vec<&str> = st.names();
    names.sort();
    let num = |k: &str| -> Result<u64> {
        get(k)?
            .parse()
            .map_err(|_| err(path, format!("metadata {k} is not a number")))
    };
    let step = num("step")?;
    let epoch = num("epoch")?;
    let batch = num("batch")? as usize;
    if num("seed")? != s.seed() {
        return Err(err(
            path,
            format!(
                "written with seed {}, the session loading it has seed {}",
                num("seed")?,
                s.seed()
            ),
        ));
    }
    // The flat snapshots (optimizer state, callbacks) follow the layout, which depends on
    // the precision (checkpoints from before mixed precision existed are f32).
    let written = md.get("precision").map_or("f32", |p| p.as_str());
    let mine = s.layout().precision().name();
    if written != mine {
        return Err(err(
            path,
            format!(
                "written with precision {written}, the session loading it has precision {mine}"
            ),
        ));
    }

    // Rebuild the flat snapshot from the named tensors.
    let (g, layout) = (s.graph().clone(), s.layout().clone());
    let adam = s.optimizer().is_adam();
    let template = Snapshot {
        params: vec![0.0; layout.params_len],
        velocity: vec![0.0; layout.params_len],
        second_moment: if adam {
            vec![0.0; layout.params_len]
        } else {
            vec![]
        },
        // States that are not batch-norm statistics (an augmentation layer's spec) are
        // part of the model's definition, not of the file: they come from the graph.
        state: {
            let mut st = vec![0.0; layout.state_len];
            for (i, info) in g.states.iter().enumerate() {
                st[layout.state_off[i]..layout.state_off[i] + info.len].copy_from_slice(&info.init);
            }
            st
        },
        step,
        // Checkpoints from before steps could be skipped in f32 applied every step.
        applied_steps: match md.get("applied_steps") {
            Some(_) => num("applied_steps")?,
            None => step,
        },
        loss_scale: if layout.mixed.is_some() {
            vec![0.0; 4]
        } else {
            vec![]
        },
    };
    let mut expected: HashMap<String, Vec<usize>> = tensors(&g, &layout, &template, adam, &[])
        .into_iter()
        .map(|(n, t)| (n, t.shape))
        .collect();
    let read_f32 = |n: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let t = st
            .tensor(n)
            .map_err(|_| err(path, format!("tensor {n} missing")))?;
        if t.dtype() != Dtype::F32 {
            return Err(err(
                path,
                format!("tensor {n} has dtype {:?}, expected F32", t.dtype()),
            ));
        }
        if t.shape() != shape {
            return Err(err(
                path,
                format!("tensor {n} has shape {:?}, expected {shape:?}", t.shape()),
            ));
        }
        Ok(t.data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    };
    let mut snap = template.clone();
    if layout.mixed.is_some() {
        snap.loss_scale = read_f32("optimizer.loss_scale", &[4])?;
    }
    for m in segments(&g, &layout) {
        import(&m, &read_f32(&m.name, &m.shape)?, &mut snap.params);
        let first = if adam { "exp_avg" } else { "momentum" };
        import(
            &m,
            &read_f32(&format!("optimizer.{first}.{}", m.name), &m.shape)?,
            &mut snap.velocity,
        );
        if adam {
            import(
                &m,
                &read_f32(&format!("optimizer.exp_avg_sq.{}", m.name), &m.shape)?,
                &mut snap.second_moment,
            );
        }
    }
    for (prefix, off, c) in bn_states(&g, &layout) {
        let rm = read_f32(&format!("{prefix}.running_mean"), &[c])?;
        let rv = read_f32(&format!("{prefix}.running_var"), &[c])?;
        snap.state[off..off + c].copy_from_slice(&rm);
        snap.state[off + c..off + 2 * c].copy_from_slice(&rv);
        let nbt = format!("{prefix}.num_batches_tracked");
        let t = st
            .tensor(&nbt)
            .map_err(|_| err(path, format!("tensor {nbt} missing")))?;
        if t.dtype() != Dtype::I64 || !t.shape().is_empty() {
            return Err(err(
                path,
                format!(
                    "tensor {nbt} is {:?} {:?}, expected an I64 scalar",
                    t.dtype(),
                    t.shape()
                ),
            ));
        }
        count(path, &nbt, t.data())?;
    }
    // Callback snapshots.
    let mut cb = vec![];
    let cb_names: Vec<String> = names
        .iter()
        .filter_map(|n| {
            n.strip_prefix("callback.")
                .and_then(|r| r.strip_suffix(".params"))
                .map(String::from)
        })
        .collect();
    let (ps, ss) = spans(&g, &layout);
    for name in &cb_names {
        let part = |p: &str, len: usize| read_f32(&format!("callback.{name}.{p}"), &[len]);
        // Packed ([`pack`]); a file of an earlier version holds the flat buffer of the
        // backend that wrote it, which loads where the layout is the same.
        let flat = |p: &str, spans: &[(usize, usize)], len: usize| -> Result<Vec<f32>> {
            let packed: usize = spans.iter().map(|s| s.1).sum();
            let n = format!("callback.{name}.{p}");
            let shape = st
                .tensor(&n)
                .map(|t| t.shape().to_vec())
                .unwrap_or_default();
            if shape == [len] && len != packed {
                read_f32(&n, &[len])
            } else {
                Ok(unpack(spans, len, &read_f32(&n, &[packed])?))
            }
        };
        let step_name = format!("callback.{name}.step");
        let step_t = st
            .tensor(&step_name)
            .map_err(|_| err(path, format!("tensor {step_name} missing")))?;
        if step_t.dtype() != Dtype::I64 || !step_t.shape().is_empty() {
            return Err(err(
                path,
                format!(
                    "tensor {step_name} is {:?} {:?}, expected an I64 scalar",
                    step_t.dtype(),
                    step_t.shape()
                ),
            ));
        }
        let step = count(path, &step_name, step_t.data())?;
        cb.push((
            name.clone(),
            Snapshot {
                params: flat("params", &ps, layout.params_len)?,
                velocity: flat("velocity", &ps, layout.params_len)?,
                second_moment: if snap.second_moment.is_empty() {
                    part("second_moment", 0)?
                } else {
                    flat("second_moment", &ps, snap.second_moment.len())?
                },
                state: flat("state", &ss, layout.state_len)?,
                step,
                applied_steps: match md.get(&format!("callback.{name}.applied_steps")) {
                    Some(v) => v.parse().map_err(|_| {
                        err(
                            path,
                            format!("metadata callback.{name}.applied_steps is not a number"),
                        )
                    })?,
                    None => step,
                },
                loss_scale: match st.tensor(&format!("callback.{name}.loss_scale")) {
                    Ok(_) if layout.mixed.is_some() => part("loss_scale", 4)?,
                    _ => vec![],
                },
            },
        ));
        for p in ["params", "velocity", "second_moment", "state", "step"] {
            expected.insert(format!("callback.{name}.{p}"), vec![]);
        }
        if layout.mixed.is_some() {
            expected.insert(format!("callback.{name}.loss_scale"), vec![]);
        }
    }
    if let Some(extra) = names.iter().find(|n| !expected.contains_key(**n)) {
        return Err(err(
            path,
            format!("unexpected tensor {extra} (not part of this model)"),
        ));
    }
    // A callback's snapshot goes back to the device only at the end of training: checked
    // now, as the session's own state is.
    for (name, snap) in &cb {
        s.check_snapshot(snap)
            .map_err(|e| in_file(path, e, &format!("callback.{name} snapshot: ")))?;
    }
    s.restore(&snap).map_err(|e| in_file(path, e, ""))?;
    let json = |k: &str| -> Result<Value> {
        serde_json::from_str(&get(k)?).map_err(|e| err(path, format!("metadata {k}: {e}")))
    };
    let standardizer = match json("standardizer")? {
        Value::Null => None,
        v => Some(Scaler::try_from_json(&v).map_err(|e| err(path, format!("standardizer: {e}")))?),
    };
    Ok((
        Meta {
            epoch,
            batch,
            history: json("history")?,
            callbacks: json("callbacks")?,
            standardizer,
            preprocessing: match md.get("preprocessing") {
                Some(_) => Some(json("preprocessing")?),
                None => None,
            },
            partial: match md.get("partial_epoch") {
                Some(_) => Some(json("partial_epoch")?),
                None => None,
            },
        },
        cb,
    ))
}

/// The `format` metadata value of weights-only files ([`save_weights`]).
pub const WEIGHTS_FORMAT: &str = "shadeprop-weights";

/// The model's tensors only: parameters and batch-norm buffers, named and laid out as
/// PyTorch's `state_dict()` of the equivalent `nn.Sequential`.
fn model_tensors(g: &Graph, layout: &Layout, snap: &Snapshot) -> Vec<(String, Owned)> {
    let mut out: Vec<(String, Owned)> = tensors(g, layout, snap, false, &[])
        .into_iter()
        .filter(|(n, _)| !n.starts_with("optimizer.") && !n.starts_with("callback."))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Save the model's weights only — parameters and batch-norm running statistics, without
/// optimizer, callback or step state (Keras' `save_weights`, PyTorch's `state_dict`) — to
/// `path`, atomically. The file is what `model.load_state_dict(safetensors.torch.load_file
/// (path), strict=True)` takes for the equivalent `nn.Sequential` (linear weights
/// `[out, in]`, convolution weights `[out, in, kh, kw]`, `num_batches_tracked` int64 set
/// to the session's applied steps). Metadata (strings): `format` = `shadeprop-weights`,
/// `version`, `model` (parameter names and shapes) and `shadeprop`: `info` as JSON — what
/// the caller documents about the model (the CLI writes `architecture`, the PyTorch
/// modules by index, and `preprocessing`: the input scaling, the class names and the
/// fitted CSV preprocessing), then `checksum` and `metadata_checksum` as in a checkpoint
/// (the module documentation), so that an edited byte or metadata value is refused by
/// [`load_weights`].
///
/// # Errors
/// Reading the device, serializing, or writing the file ([`Error::Io`]).
pub fn save_weights(path: &Path, s: &mut Session, info: &Value) -> Result<()> {
    let mut snap = s.snapshot()?;
    snap.step = snap.applied_steps;
    let all = model_tensors(s.graph(), s.layout(), &snap);
    let mut md: HashMap<String, String> = HashMap::new();
    md.insert("format".into(), WEIGHTS_FORMAT.into());
    md.insert("version".into(), VERSION.into());
    md.insert("model".into(), model_signature(s.graph()));
    md.insert("shadeprop".into(), info.to_string());
    seal(&all, &mut md);
    write_tensors(path, &all, md)
}

/// Load model weights into `s` from a weights file ([`save_weights`]), a `state_dict` that
/// PyTorch saved with `safetensors.torch.save_file` from the equivalent `nn.Sequential`
/// (no metadata needed), or a full checkpoint (its `optimizer.` and `callback.` tensors are
/// left aside). Parameters and batch-norm running statistics are replaced; the session's
/// seed, optimizer state, step and precision stay as they are, so any session of the same
/// model takes the weights. Returns the file's `shadeprop` metadata (JSON; null when
/// absent).
///
/// Every tensor of the model must be present with its PyTorch shape and dtype (f32;
/// `num_batches_tracked` int64, whose value is not used but must be >= 0) and nothing else may be: a
/// mismatch is [`Error::Checkpoint`] listing every missing key, unexpected key, shape and
/// dtype difference (as `load_state_dict(strict=True)` does), before anything is written.
/// Non-finite values and negative running variances are refused naming the tensor and
/// the index ([`Session::check_snapshot`]). A file that carries `checksum` or
/// `metadata_checksum` (those shadeprop writes) must match them; a PyTorch `state_dict`
/// carries neither.
pub fn load_weights(path: &Path, s: &mut Session) -> Result<Value> {
    let bytes = crate::fs::read_file(path, crate::fs::MAX_CHECKPOINT_BYTES)?;
    let mut snap = s.snapshot()?;
    let expected = model_tensors(s.graph(), s.layout(), &snap);
    let names: Vec<String> = expected.iter().map(|(n, _)| n.clone()).collect();
    let (st, md) = open(&bytes, path, &names)?;
    // A PyTorch state_dict has no checksums; files shadeprop wrote have both.
    verify_checksums(&st, &md, path, false)?;
    let full_checkpoint = md.get("format").is_some_and(|f| f == FORMAT);
    let mut problems: Vec<String> = vec![];
    let names: Vec<String> = st
        .names()
        .into_iter()
        .filter(|n| {
            !(full_checkpoint && (n.starts_with("optimizer.") || n.starts_with("callback.")))
        })
        .map(|n| n.to_string())
        .collect();
    for (name, t) in &expected {
        match st.tensor(name) {
            Err(_) => problems.push(format!("missing key {name:?} (shape {:?})", t.shape)),
            Ok(v) => {
                if v.dtype() != t.dtype {
                    problems.push(format!(
                        "{name:?}: dtype {:?}, expected {:?}{}",
                        v.dtype(),
                        t.dtype,
                        if t.dtype == Dtype::F32 {
                            " (convert with .float() before saving)"
                        } else {
                            ""
                        }
                    ));
                } else if v.shape() != t.shape.as_slice() {
                    problems.push(format!(
                        "{name:?}: shape {:?}, expected {:?}",
                        v.shape(),
                        t.shape
                    ));
                }
            }
        }
    }
    let mut unexpected: Vec<&String> = names
        .iter()
        .filter(|n| !expected.iter().any(|(e, _)| e == *n))
        .collect();
    unexpected.sort();
    // A state_dict of a model whose layers are named submodules (`self.lstm = nn.LSTM…`)
    // rather than indices: the same keys under another prefix.
    let renamed = expected.iter().find_map(|(e, _)| {
        let (_, suffix) = e.split_once('.')?;
        let u = unexpected
            .iter()
            .find(|u| u.as_str() == suffix || u.ends_with(&format!(".{suffix}")))?;
        (st.tensor(e).is_err()).then(|| (e.clone(), (*u).clone()))
    });
    for n in unexpected {
        problems.push(format!("unexpected key {n:?}"));
    }
    if let Some((want, got)) = renamed {
        problems.insert(
            0,
            format!(
                "the file names its tensors by submodule (e.g. {got:?}) where this model, an \
                 nn.Sequential, names them by layer index (e.g. {want:?}): rename the keys \
                 before saving"
            ),
        );
    }
    if !problems.is_empty() {
        let shown: Vec<String> = problems.iter().take(20).cloned().collect();
        return Err(err(
            path,
            format!(
                "does not fit this model ({} difference(s)): {}{}",
                problems.len(),
                shown.join("; "),
                if problems.len() > 20 { "; …" } else { "" }
            ),
        ));
    }
    let floats = |name: &str| -> Result<Vec<f32>> {
        let v = st
            .tensor(name)
            .map_err(|e| err(path, format!("tensor {name}: {e}")))?;
        let f: Vec<f32> = v
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        crate::session::check_finite_tensor(name, "values", &f)
            .map_err(|e| in_file(path, e, ""))?;
        Ok(f)
    };
    for m in segments(s.graph(), s.layout()) {
        import(&m, &floats(&m.name)?, &mut snap.params);
    }
    for (prefix, off, c) in bn_states(s.graph(), s.layout()) {
        let mean = floats(&format!("{prefix}.running_mean"))?;
        let var = floats(&format!("{prefix}.running_var"))?;
        snap.state[off..off + c].copy_from_slice(&mean);
        snap.state[off + c..off + 2 * c].copy_from_slice(&var);
        // Not used, but a negative count is no PyTorch state_dict's.
        let nbt = format!("{prefix}.num_batches_tracked");
        let t = st
            .tensor(&nbt)
            .map_err(|e| err(path, format!("tensor {nbt}: {e}")))?;
        count(path, &nbt, t.data())?;
    }
    s.restore_keeping_step(&snap)
        .map_err(|e| in_file(path, e, ""))?;
    Ok(md
        .get("shadeprop")
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or(Value::Null))
}
