//! The wgpu side: one Vulkan device, a cache of compiled pipelines, and the passes that run a
//! program's shader over a range of samples and read back only reductions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use isl_mc::program::Program;

use crate::GpuError;
use crate::codegen::{self, COARSE_BINS, SAMPLES_PER_WORKGROUP};

/// The uniform block of the kernel (`Params` in `prelude.wgsl`), 80 bytes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Params {
    pub key: [u32; 2],
    pub base: [u32; 2],
    pub count: u32,
    pub stream: u32,
    pub mode: u32,
    pub ntargets: u32,
    pub threshold: f32,
    pub wref: f32,
    pub pfx_shift: u32,
    pub bin_shift: u32,
    pub bin_mask: u32,
    pub bins: u32,
    pub shifted: u32,
}

impl Params {
    fn bytes(&self) -> [u8; 80] {
        let words: [u32; 20] = [
            self.key[0],
            self.key[1],
            self.base[0],
            self.base[1],
            self.count,
            self.stream,
            self.mode,
            self.ntargets,
            self.threshold.to_bits(),
            self.wref.to_bits(),
            f32::NAN.to_bits(),
            f32::INFINITY.to_bits(),
            self.pfx_shift,
            self.bin_shift,
            self.bin_mask,
            self.bins,
            self.shifted,
            0,
            0,
            0,
        ];
        let mut out = [0u8; 80];
        for (o, w) in out.chunks_exact_mut(4).zip(words) {
            o.copy_from_slice(&w.to_le_bytes());
        }
        out
    }
}

/// Kernel modes (`P.mode`).
pub(crate) const MODE_MOMENTS: u32 = 0;
pub(crate) const MODE_REFINE: u32 = 1;
pub(crate) const MODE_TAIL: u32 = 2;
pub(crate) const MODE_VALUES: u32 = 3;
pub(crate) const MODE_WCOARSE: u32 = 4;
pub(crate) const MODE_WREFINE: u32 = 5;
/// The weighted moments: the kernel's `main_w` entry point (its `P.mode` is not read).
pub(crate) const MODE_WMOMENTS: u32 = 6;

/// One workgroup's reduction record (`Partial` in `prelude.wgsl`, 64 bytes): counts, and
/// fourteen f32 whose meaning depends on the mode.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Partial {
    pub n: u32,
    pub hits: u32,
    pub v: [f32; 14],
}

const PARTIAL_BYTES: u64 = 64;

fn u32s(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

fn partials(bytes: &[u8]) -> Vec<Partial> {
    bytes
        .chunks_exact(PARTIAL_BYTES as usize)
        .map(|c| {
            let w: Vec<u32> = u32s(c).collect();
            let mut v = [0f32; 14];
            for (x, &b) in v.iter_mut().zip(&w[2..]) {
                *x = f32::from_bits(b);
            }
            Partial { n: w[0], hits: w[1], v }
        })
        .collect()
}

/// Adds counters read back to `acc`: one u32 word each (`words == 1`), or 64-bit values stored as
/// `acc.len()` low words followed by as many high words (`words == 2`).
fn add_wide(acc: &mut [u64], bytes: &[u8], words: u64) {
    let w: Vec<u32> = u32s(bytes).collect();
    let n = acc.len();
    for (i, a) in acc.iter_mut().enumerate() {
        let lo = u64::from(w.get(i).copied().unwrap_or(0));
        let hi = if words == 2 { u64::from(w.get(n + i).copied().unwrap_or(0)) } else { 0 };
        *a = a.saturating_add(lo | (hi << 32));
    }
}

/// What went wrong on the device outside any call (uncaptured validation errors, device loss).
#[derive(Default)]
struct Faults {
    uncaptured: Option<String>,
    lost: Option<String>,
}

/// A compiled program: the kernel's `main` entry point and, for programs with evidence, `main_w`.
pub(crate) struct Pipeline {
    pipeline: wgpu::ComputePipeline,
    weighted: Option<wgpu::ComputePipeline>,
    layout: wgpu::BindGroupLayout,
}

/// The bindings of every program's kernel (`prelude.wgsl`), one layout for both entry points.
fn program_layout(device: &wgpu::Device) -> wgpu::BindGroupLayout {
    let entry = |binding: u32, ty: wgpu::BufferBindingType| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer { ty, has_dynamic_offset: false, min_binding_size: None },
        count: None,
    };
    let rw = wgpu::BufferBindingType::Storage { read_only: false };
    let ro = wgpu::BufferBindingType::Storage { read_only: true };
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("isl-gpu program bindings"),
        entries: &[
            entry(0, wgpu::BufferBindingType::Uniform),
            entry(1, rw),
            entry(2, rw),
            entry(3, ro),
            entry(4, rw),
            entry(5, ro),
            entry(6, rw),
        ],
    })
}

/// The device, its queue, and what is cached on it.
pub(crate) struct Device {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    faults: Arc<Mutex<Faults>>,
    pipelines: Mutex<PipelineCache>,
    /// One run at a time: error scopes are per thread and a run owns its buffers' mappings.
    run_lock: Mutex<()>,
    /// Samples per dispatch (a multiple of [`SAMPLES_PER_WORKGROUP`]).
    pub chunk: u64,
    /// Philox's products as 64-bit integers (the device has `SHADER_INT64` and it was asked for).
    pub wide: bool,
}

struct PipelineCache {
    map: HashMap<u64, Arc<Pipeline>>,
    order: Vec<u64>,
    capacity: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind: keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Device {
    /// The first Vulkan adapter (none: `Ok(None)`), its device and queue.
    pub fn open(allow_software: bool, chunk: u64, cache: usize, wide: bool) -> Result<Option<Device>, GpuError> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = wgpu::Backends::VULKAN;
        desc.flags = wgpu::InstanceFlags::empty();
        let instance = wgpu::Instance::new(desc);
        let options = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            apply_limit_buckets: false,
        };
        let adapter = match pollster::block_on(instance.request_adapter(&options)) {
            Ok(a) => a,
            Err(_) => return Ok(None),
        };
        let info = adapter.get_info();
        if info.device_type == wgpu::DeviceType::Cpu && !allow_software {
            return Ok(None);
        }
        let limits = wgpu::Limits::defaults();
        let wide = wide && adapter.features().contains(wgpu::Features::SHADER_INT64);
        let required_features = if wide { wgpu::Features::SHADER_INT64 } else { wgpu::Features::empty() };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("isl-gpu"),
            required_features,
            required_limits: limits,
            ..Default::default()
        }))
        .map_err(|e| GpuError::Device(format!("request_device: {e}")))?;
        let faults = Arc::new(Mutex::new(Faults::default()));
        let f = faults.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            lock(&f).uncaptured.get_or_insert_with(|| e.to_string());
        }));
        let f = faults.clone();
        device.set_device_lost_callback(move |reason, message| {
            let why = if message.is_empty() { format!("{reason:?}") } else { format!("{reason:?}: {message}") };
            lock(&f).lost.get_or_insert(why);
        });
        let chunk =
            if chunk == 0 { if info.device_type == wgpu::DeviceType::Cpu { 1 << 20 } else { 1 << 24 } } else { chunk };
        let chunk = chunk.div_ceil(SAMPLES_PER_WORKGROUP).clamp(1, 65_535) * SAMPLES_PER_WORKGROUP;
        Ok(Some(Device {
            device,
            queue,
            info,
            faults,
            pipelines: Mutex::new(PipelineCache { map: HashMap::new(), order: Vec::new(), capacity: cache.max(1) }),
            run_lock: Mutex::new(()),
            chunk,
            wide,
        }))
    }

    /// Holds the device for one run.
    pub fn begin(&self) -> MutexGuard<'_, ()> {
        lock(&self.run_lock)
    }

    /// An error recorded by the device callbacks since the last check.
    fn fault(&self) -> Result<(), GpuError> {
        let mut f = lock(&self.faults);
        if let Some(m) = &f.lost {
            return Err(GpuError::Device(format!("device lost: {m}")));
        }
        if let Some(m) = f.uncaptured.take() {
            return Err(GpuError::Device(m));
        }
        Ok(())
    }

    /// The compiled pipeline of `program`, from the cache or freshly compiled.
    pub fn pipeline(&self, program: &Program) -> Result<Arc<Pipeline>, GpuError> {
        self.fault()?;
        let source = codegen::shader(program, self.wide).map_err(|u| GpuError::Shader(u.to_string()))?;
        let key = codegen::shader_hash(&source);
        if let Some(p) = lock(&self.pipelines).map.get(&key) {
            return Ok(p.clone());
        }
        let p = Arc::new(self.compile_program(&source, codegen::weighted(program))?);
        let mut cache = lock(&self.pipelines);
        if cache.map.len() >= cache.capacity && !cache.order.is_empty() {
            let old = cache.order.remove(0);
            cache.map.remove(&old);
        }
        cache.order.push(key);
        cache.map.insert(key, p.clone());
        Ok(p)
    }

    /// Compiles a program's shader: `main`, and `main_w` when `weighted`, over the bindings of
    /// [`program_layout`], capturing validation errors.
    fn compile_program(&self, source: &str, weighted: bool) -> Result<Pipeline, GpuError> {
        let label = "isl-gpu program";
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let layout = program_layout(&self.device);
        let pipeline_layout = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let entry = |name: &str| {
            self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(name),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let pipeline = entry("main");
        let weighted = weighted.then(|| entry("main_w"));
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Shader(e.to_string()));
        }
        self.fault()?;
        Ok(Pipeline { pipeline, weighted, layout })
    }

    /// Compiles a WGSL module with entry point `main`, capturing validation errors.
    pub fn compile(&self, source: &str, label: &str) -> Result<Pipeline, GpuError> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Shader(e.to_string()));
        }
        self.fault()?;
        let layout = pipeline.get_bind_group_layout(0);
        Ok(Pipeline { pipeline, weighted: None, layout })
    }

    /// A storage buffer.
    pub fn buffer(&self, label: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: size.max(16).next_multiple_of(4),
            usage,
            mapped_at_creation: false,
        })
    }

    /// Reads the first `sizes[i]` bytes of each mappable buffer (after the submitted work).
    pub fn read(&self, bufs: &[(&wgpu::Buffer, u64)]) -> Result<Vec<Vec<u8>>, GpuError> {
        let (tx, rx) = std::sync::mpsc::channel();
        for (i, (b, size)) in bufs.iter().enumerate() {
            let tx = tx.clone();
            b.map_async(wgpu::MapMode::Read, 0..*size, move |r| {
                let _ = tx.send((i, r.is_ok()));
            });
        }
        drop(tx);
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Device(format!("poll: {e}")))?;
        self.fault()?;
        let mut ok = vec![false; bufs.len()];
        for (i, r) in rx.iter() {
            ok[i] = r;
        }
        let mut out = Vec::with_capacity(bufs.len());
        for ((b, size), ok) in bufs.iter().zip(ok) {
            if !ok {
                return Err(GpuError::Device("mapping a readback buffer failed".into()));
            }
            let data =
                b.get_mapped_range(0..*size).map_err(|e| GpuError::Device(format!("mapped range: {e}")))?.to_vec();
            b.unmap();
            out.push(data);
        }
        Ok(out)
    }

    /// Submits an encoder's work.
    fn submit(&self, encoder: wgpu::CommandEncoder) {
        self.queue.submit([encoder.finish()]);
    }
}

/// Extra buffers of a refinement pass: sorted key prefixes and their histograms.
pub(crate) struct Refine<'a> {
    pub targets: &'a [u32],
    pub pfx_shift: u32,
    pub bin_shift: u32,
    pub bins: u32,
}

/// What one pass over a range of samples gives back.
#[derive(Default)]
pub(crate) struct PassOutput {
    /// Workgroup records, in sample order (modes 0, 2 and the weighted moments).
    pub partials: Vec<Partial>,
    /// Level-A histogram, [`COARSE_BINS`] counts (mode 0) or weights in units of 2⁻²⁴ (mode 4).
    pub coarse: Vec<u64>,
    /// Refined histograms, `bins` counts (mode 1) or weights in units of 2⁻²⁴ (mode 5) per target.
    pub fine: Vec<u64>,
    /// Per-sample (y, log-weight) pairs (mode 3).
    pub values: Vec<f32>,
}

/// One pass: `mode` over samples `start .. start + count` of `stream` under `seed`.
pub(crate) struct Pass<'a> {
    pub mode: u32,
    pub seed: u64,
    pub stream: u32,
    pub start: u64,
    pub count: u64,
    pub threshold: f32,
    /// Importance-sampling shifts per slot (the kernel's `shifted` runs), if any.
    pub shifts: Option<&'a [f32]>,
    /// The reference of the weights `exp(lw − wref)` (modes 2, 4, 5).
    pub wref: f32,
    pub refine: Option<Refine<'a>>,
}

impl Device {
    /// Runs a pass in chunks of [`Device::chunk`] samples, polling `stop` between chunks.
    pub fn run_pass(
        &self,
        pipeline: &Pipeline,
        pass: &Pass<'_>,
        stop: &dyn Fn() -> bool,
    ) -> Result<PassOutput, GpuError> {
        self.fault()?;
        let kernel = if pass.mode == MODE_WMOMENTS {
            pipeline
                .weighted
                .as_ref()
                .ok_or_else(|| GpuError::Shader("weighted moments of a program compiled without evidence".into()))?
        } else {
            &pipeline.pipeline
        };
        // Modes 4 and 5 sum 64-bit weights: a low word and a carry word per bin.
        let words = if pass.mode == MODE_WCOARSE || pass.mode == MODE_WREFINE { 2 } else { 1 };
        let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let readback = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
        // Values are indexed from the dispatch's first sample: one dispatch (at most
        // DEBUG_MAX_SAMPLES = 16 workgroups) for them.
        let chunk = if pass.mode == MODE_VALUES { pass.count.max(1) } else { self.chunk.min(pass.count.max(1)) };
        let max_groups = chunk.div_ceil(SAMPLES_PER_WORKGROUP);
        let params = self.buffer("params", 80, wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST);
        let partial_buf = self.buffer("partials", max_groups * PARTIAL_BYTES, storage);
        let partial_read = self.buffer("partials readback", max_groups * PARTIAL_BYTES, readback);
        let coarse_bytes = (COARSE_BINS * 4) as u64 * words;
        let coarse = self.buffer("coarse", coarse_bytes, storage);
        let coarse_read = self.buffer("coarse readback", coarse_bytes, readback);
        let (targets, ntargets, fine_len) = match &pass.refine {
            Some(r) => (r.targets, r.targets.len() as u32, r.targets.len() as u64 * u64::from(r.bins)),
            None => (&[][..], 0, 0),
        };
        let target_buf = self.buffer("targets", targets.len() as u64 * 4, storage);
        if !targets.is_empty() {
            let bytes: Vec<u8> = targets.iter().flat_map(|t| t.to_le_bytes()).collect();
            self.queue.write_buffer(&target_buf, 0, &bytes);
        }
        let fine_bytes = fine_len * 4 * words;
        let fine = self.buffer("fine", fine_bytes, storage);
        let fine_read = self.buffer("fine readback", fine_bytes, readback);
        let shift_buf = self.buffer("shifts", pass.shifts.map_or(4, |s| s.len() as u64 * 4), storage);
        if let Some(s) = pass.shifts
            && !s.is_empty()
        {
            let bytes: Vec<u8> = s.iter().flat_map(|x| x.to_le_bytes()).collect();
            self.queue.write_buffer(&shift_buf, 0, &bytes);
        }
        let values_len = if pass.mode == MODE_VALUES { pass.count * 8 } else { 8 };
        let values = self.buffer("values", values_len, storage);
        let values_read = self.buffer("values readback", values_len, readback);
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("isl-gpu bindings"),
            layout: &pipeline.layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: params.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: partial_buf.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 2, resource: coarse.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 3, resource: target_buf.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 4, resource: fine.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 5, resource: shift_buf.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 6, resource: values.as_entire_binding() },
            ],
        });
        let has_coarse = pass.mode == MODE_MOMENTS || pass.mode == MODE_WCOARSE;
        let has_partials = pass.mode == MODE_MOMENTS || pass.mode == MODE_TAIL || pass.mode == MODE_WMOMENTS;
        let mut out = PassOutput {
            coarse: if has_coarse { vec![0; COARSE_BINS] } else { Vec::new() },
            fine: vec![0; fine_len as usize],
            ..PassOutput::default()
        };
        let mut p = Params {
            key: [pass.seed as u32, (pass.seed >> 32) as u32],
            stream: pass.stream,
            mode: pass.mode,
            ntargets,
            threshold: pass.threshold,
            wref: pass.wref,
            shifted: u32::from(pass.shifts.is_some()),
            ..Params::default()
        };
        if let Some(r) = &pass.refine {
            p.pfx_shift = r.pfx_shift;
            p.bin_shift = r.bin_shift;
            p.bin_mask = r.bins - 1;
            p.bins = r.bins;
        }
        let mut done = 0u64;
        // Samples counted into the refined histograms since they were last read (u32 counters).
        let mut since_read = 0u64;
        while done < pass.count {
            if stop() {
                return Err(GpuError::Interrupted);
            }
            let n = chunk.min(pass.count - done);
            let first = pass.start.wrapping_add(done);
            p.base = [first as u32, (first >> 32) as u32];
            p.count = n as u32;
            self.queue.write_buffer(&params, 0, &p.bytes());
            let groups = n.div_ceil(SAMPLES_PER_WORKGROUP);
            let last = done + n >= pass.count;
            let read_fine = fine_len > 0 && (last || since_read + n + chunk > u64::from(u32::MAX));
            let mut enc =
                self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("isl-gpu") });
            if has_coarse {
                enc.clear_buffer(&coarse, 0, None);
            }
            {
                let mut cp =
                    enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
                cp.set_pipeline(kernel);
                cp.set_bind_group(0, &bind, &[]);
                cp.dispatch_workgroups(groups as u32, 1, 1);
            }
            let mut reads: Vec<(&wgpu::Buffer, u64)> = Vec::new();
            if has_partials {
                enc.copy_buffer_to_buffer(&partial_buf, 0, &partial_read, 0, groups * PARTIAL_BYTES);
                reads.push((&partial_read, groups * PARTIAL_BYTES));
            }
            if has_coarse {
                enc.copy_buffer_to_buffer(&coarse, 0, &coarse_read, 0, coarse_bytes);
                reads.push((&coarse_read, coarse_bytes));
            }
            if read_fine {
                enc.copy_buffer_to_buffer(&fine, 0, &fine_read, 0, fine_bytes);
                enc.clear_buffer(&fine, 0, None);
                reads.push((&fine_read, fine_bytes));
            }
            if pass.mode == MODE_VALUES && last {
                enc.copy_buffer_to_buffer(&values, 0, &values_read, 0, values_len);
                reads.push((&values_read, values_len));
            }
            self.submit(enc);
            let data = if reads.is_empty() {
                self.device
                    .poll(wgpu::PollType::wait_indefinitely())
                    .map_err(|e| GpuError::Device(format!("poll: {e}")))?;
                self.fault()?;
                Vec::new()
            } else {
                self.read(&reads)?
            };
            let mut it = data.into_iter();
            if has_partials {
                out.partials.extend(partials(&it.next().unwrap_or_default()));
            }
            if has_coarse {
                add_wide(&mut out.coarse, &it.next().unwrap_or_default(), words);
            }
            since_read += n;
            if read_fine {
                add_wide(&mut out.fine, &it.next().unwrap_or_default(), words);
                since_read = 0;
            }
            if pass.mode == MODE_VALUES && last {
                out.values = u32s(&it.next().unwrap_or_default()).map(f32::from_bits).collect();
            }
            done += n;
        }
        Ok(out)
    }

    /// Philox4x32-10 of each (counter, key) on the device.
    pub fn philox(&self, inputs: &[([u32; 4], [u32; 2])]) -> Result<Vec<[u32; 4]>, GpuError> {
        let _guard = self.begin();
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let p = self.compile(&codegen::philox_kat(self.wide), "philox kat")?;
        let n = inputs.len() as u64;
        let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let input = self.buffer("kat in", n * 32, storage);
        let output = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kat out"),
            size: n * 16,
            usage: storage,
            mapped_at_creation: false,
        });
        let read = self.buffer("kat read", n * 16, wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
        let bytes: Vec<u8> = inputs
            .iter()
            .flat_map(|(c, k)| c.iter().chain(k).chain(&[0, 0]).flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>())
            .collect();
        self.queue.write_buffer(&input, 0, &bytes);
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &p.layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: input.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: output.as_entire_binding() },
            ],
        });
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut cp = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
            cp.set_pipeline(&p.pipeline);
            cp.set_bind_group(0, &bind, &[]);
            cp.dispatch_workgroups(n.div_ceil(64) as u32, 1, 1);
        }
        enc.copy_buffer_to_buffer(&output, 0, &read, 0, n * 16);
        self.submit(enc);
        let data = self.read(&[(&read, n * 16)])?;
        let words: Vec<u32> = u32s(&data[0]).collect();
        Ok(words.chunks_exact(4).map(|w| [w[0], w[1], w[2], w[3]]).collect())
    }
}
