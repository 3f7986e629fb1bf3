//! One adapter per runtime, each driving the same model bytes through that
//! runtime's own public API, the way a user of it would.
//!
//! Every runtime borrows the caller's input, which stays alive and unchanged
//! between runs: onnxi through a reusable [`onnxi::Session`], ONNX Runtime
//! through a `TensorRef` made inside the timed region (as a caller does per
//! call), tract through a shared `TValue` (an `Arc` clone, so tract cannot
//! write into it). The optional `onnxi Model::run` column is the exception:
//! that API takes ownership, so it is handed a fresh copy made outside the
//! timed region by [`Runner::prepare`], as a caller that produces a new input
//! per call would hand it over.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use ndarray::ArrayD;
use tract_onnx::prelude::{Framework, InferenceModelExt, IntoTValue, TValue, TypedRunnableModel, tvec};

/// A runtime with one model loaded, ready to run on one input.
pub trait Runner {
    /// Untimed work before each timed run.
    fn prepare(&mut self) -> Result<()> {
        Ok(())
    }
    /// One timed run; the outputs are dropped (or handed back) inside it.
    fn run(&mut self) -> Result<()>;
    /// One run (after its `prepare`) whose output is returned flat, for the
    /// agreement check.
    fn output(&mut self) -> Result<Vec<f32>>;
}

/// Loads `bytes` in onnxi with a pool of `threads` threads.
pub fn load_onnxi(bytes: &[u8], threads: usize) -> Result<onnxi::Model> {
    onnxi::Model::builder().threads(threads).from_bytes(bytes).map_err(|e| anyhow!("onnxi load: {e}"))
}

/// The names of the model's input and of the output compared.
#[derive(Debug, Clone)]
pub struct Io {
    pub input: String,
    pub output: String,
}

fn onnxi_output(outputs: &onnxi::Outputs, name: &str) -> Result<Vec<f32>> {
    let output = outputs.get(name).with_context(|| format!("onnxi: no output named {name:?}"))?;
    let view = output.as_f32().map_err(|e| anyhow!("onnxi output: {e}"))?;
    Ok(view.iter().copied().collect())
}

/// onnxi through a reusable session: borrowed input, output buffers kept
/// from one run to the next.
pub struct OnnxiSession<'m> {
    session: onnxi::Session<'m>,
    input: onnxi::Tensor,
    io: Io,
}

impl<'m> OnnxiSession<'m> {
    pub fn new(model: &'m onnxi::Model, input: &ArrayD<f32>, io: Io) -> OnnxiSession<'m> {
        OnnxiSession { session: model.session(), input: onnxi::Tensor::from(input.clone()), io }
    }
}

impl Runner for OnnxiSession<'_> {
    fn run(&mut self) -> Result<()> {
        let outputs = self.session.run([(&self.io.input, &self.input)]).map_err(|e| anyhow!("onnxi run: {e}"))?;
        std::hint::black_box(outputs);
        Ok(())
    }

    fn output(&mut self) -> Result<Vec<f32>> {
        let outputs = self.session.run([(&self.io.input, &self.input)]).map_err(|e| anyhow!("onnxi run: {e}"))?;
        onnxi_output(outputs, &self.io.output)
    }
}

/// onnxi through `Model::run`, which takes its input by value and returns
/// fresh outputs.
pub struct OnnxiModelRun<'m> {
    model: &'m onnxi::Model,
    input: ArrayD<f32>,
    pending: Option<onnxi::Tensor>,
    io: Io,
}

impl<'m> OnnxiModelRun<'m> {
    pub fn new(model: &'m onnxi::Model, input: &ArrayD<f32>, io: Io) -> OnnxiModelRun<'m> {
        OnnxiModelRun { model, input: input.clone(), pending: None, io }
    }

    fn run_owned(&mut self) -> Result<onnxi::Outputs> {
        let tensor = self.pending.take().context("prepare() was not called")?;
        self.model.run([(self.io.input.as_str(), tensor)]).map_err(|e| anyhow!("onnxi run: {e}"))
    }
}

impl Runner for OnnxiModelRun<'_> {
    fn prepare(&mut self) -> Result<()> {
        self.pending = Some(onnxi::Tensor::from(self.input.clone()));
        Ok(())
    }

    fn run(&mut self) -> Result<()> {
        let outputs = self.run_owned()?;
        std::hint::black_box(&outputs);
        Ok(())
    }

    fn output(&mut self) -> Result<Vec<f32>> {
        self.prepare()?;
        let outputs = self.run_owned()?;
        onnxi_output(&outputs, &self.io.output)
    }
}

/// ONNX Runtime through the `ort` crate, loaded from `ORT_DYLIB_PATH`.
pub struct Ort {
    session: ort::session::Session,
    input: ArrayD<f32>,
    io: Io,
}

impl Ort {
    pub fn new(
        env: &ort::environment::Environment,
        bytes: &[u8],
        input: &ArrayD<f32>,
        threads: usize,
        io: Io,
    ) -> Result<Ort> {
        // The graph optimisation level stays at ONNX Runtime's default (all
        // optimisations); inter-op threads only matter in parallel execution
        // mode, and are set to 1 to say so.
        let session = ort::session::Session::builder(env)
            .map_err(|e| anyhow!("ort builder: {e}"))?
            .with_intra_threads(threads)
            .map_err(|e| anyhow!("ort intra threads: {e}"))?
            .with_inter_threads(1)
            .map_err(|e| anyhow!("ort inter threads: {e}"))?
            .commit_from_memory(bytes)
            .map_err(|e| anyhow!("ort load: {e}"))?;
        Ok(Ort { session, input: input.clone(), io })
    }
}

impl Runner for Ort {
    fn run(&mut self) -> Result<()> {
        let tensor = ort::value::TensorRef::from_array_view(self.input.view())?;
        let outputs = self.session.run(ort::inputs![self.io.input.as_str() => tensor])?;
        std::hint::black_box(&outputs);
        Ok(())
    }

    fn output(&mut self) -> Result<Vec<f32>> {
        let tensor = ort::value::TensorRef::from_array_view(self.input.view())?;
        let outputs = self.session.run(ort::inputs![self.io.input.as_str() => tensor])?;
        let view = outputs[self.io.output.as_str()].try_extract_array::<f32>()?;
        Ok(view.iter().copied().collect())
    }
}

/// tract, optimised plan; tract runs these ops on the calling thread only.
pub struct Tract {
    plan: Arc<TypedRunnableModel>,
    input: TValue,
}

impl Tract {
    pub fn new(bytes: &[u8], input: &ArrayD<f32>) -> Result<Tract> {
        let plan = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .and_then(|model| model.into_optimized())
            .and_then(tract_onnx::prelude::IntoRunnable::into_runnable)
            .map_err(|e| anyhow!("tract load: {e:?}"))?;
        Ok(Tract { plan, input: input.clone().into_tvalue() })
    }

    fn run_shared(&self) -> Result<tract_onnx::prelude::TVec<TValue>> {
        self.plan.run(tvec![self.input.clone()]).map_err(|e| anyhow!("tract run: {e:?}"))
    }
}

impl Runner for Tract {
    fn run(&mut self) -> Result<()> {
        let outputs = self.run_shared()?;
        std::hint::black_box(&outputs);
        Ok(())
    }

    fn output(&mut self) -> Result<Vec<f32>> {
        let outputs = self.run_shared()?;
        let view = outputs[0].to_plain_array_view::<f32>().map_err(|e| anyhow!("tract output: {e:?}"))?;
        Ok(view.iter().copied().collect())
    }
}
