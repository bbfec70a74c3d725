using System.Globalization;
using System.Text.RegularExpressions;
using Xunit;

namespace OnnxQuant.Tests.Cli;

/// <summary>
/// The CPU-only parts of scripts/gpu-check.sh (docs/gpu-check.md): without a GPU `run` says so in one line; `stage` on a
/// small published folder splits it into parts no bigger than asked, which `receive` collects one carried part at a
/// time and `unpack` turns back into the same files, less what the GPU run does not need; a damaged or missing part is
/// refused by name. No publish here: `GPU_CHECK_PUBLISHED` hands `stage` a folder.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")] // a bash script, and Unix file modes: Linux only, like the GPU machine
public sealed class GpuCheckScriptTests : IDisposable
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(2);
    private readonly TempFolder _temp = new();
    private readonly string _repo = CliHarness.RepoRoot();

    private InstalledCli.Result Script(IReadOnlyDictionary<string, string> environment, params string[] args) =>
        InstalledCli.Run(_repo, Limit, "bash", environment, [Path.Combine(_repo, "scripts", "gpu-check.sh"), .. args]);

    [Theory]
    [InlineData("echo 'NVIDIA-SMI has failed because it couldn'\\''t communicate with the NVIDIA driver.'; exit 9")]
    [InlineData("echo 'No devices were found'; exit 6")]
    public void Without_a_gpu_run_prints_one_line_and_exits_0(string fakeNvidiaSmi)
    {
        string bin = Directory.CreateDirectory(_temp.File("bin")).FullName;
        File.WriteAllText(Path.Combine(bin, "nvidia-smi"), "#!/bin/sh\n" + fakeNvidiaSmi + "\n");
        File.SetUnixFileMode(Path.Combine(bin, "nvidia-smi"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var env = new Dictionary<string, string>
        {
            ["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH"),
            ["GPU_CHECK_STASH"] = _temp.File("stash"),
            ["OUT"] = _temp.File("out"),
        };

        var result = Script(env, "run");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("gpu-check: no CUDA device or driver found (nvidia-smi missing or lists no GPU); nothing to run\n", result.Out);
        Assert.Equal("", result.Error);
        Assert.False(Directory.Exists(_temp.File("stash")), "nothing may be unpacked without a GPU");
        Assert.False(Directory.Exists(_temp.File("out")), "nothing may be written without a GPU");
    }

    [Fact]
    public void Stage_splits_under_the_part_size_and_receive_then_unpack_give_back_the_same_files()
    {
        const int partBytes = 64 * 1024;
        string published = FakePublishFolder();
        var env = StageEnvironment(published, partBytes);

        var staged = Script(env, "stage");

        Assert.True(staged.ExitCode == 0, staged.Out + staged.Error);
        var parts = Directory.GetFiles(_temp.File("stage"), "part-*").Order(StringComparer.Ordinal).ToArray();
        var manifest = File.ReadAllLines(_temp.File("stage/manifest"));
        long payload = long.Parse(manifest[0].Split(' ')[3], CultureInfo.InvariantCulture);
        // 300 KB of random bytes do not compress: at least 5 parts of 64 KiB, all full but the last.
        Assert.Equal((int)((payload + partBytes - 1) / partBytes), parts.Length);
        Assert.InRange(parts.Length, 5, 8);
        Assert.All(parts[..^1], p => Assert.Equal(partBytes, new FileInfo(p).Length));
        Assert.InRange(new FileInfo(parts[^1]).Length, 1, partBytes);
        Assert.Equal(parts.Length, manifest.Count(l => l.StartsWith("part ", StringComparison.Ordinal)));
        // The plan: one call per part, each carrying the manifest and its part, the last one running the check.
        var calls = staged.Out.Split('\n').Where(l => Regex.IsMatch(l, @"^  \d+\. command: .* carry: \[")).ToArray();
        Assert.Equal(parts.Length, calls.Length);
        Assert.Contains("receive && bash scripts/gpu-check.sh run", calls[^1], StringComparison.Ordinal);
        Assert.DoesNotContain(" run\"", calls[0], StringComparison.Ordinal);

        // The device side: each call brings the manifest and one part into the tree; receive moves it to the stash.
        string incoming = _temp.File("incoming");
        var deviceEnv = new Dictionary<string, string> { ["GPU_CHECK_DIR"] = incoming, ["GPU_CHECK_STASH"] = _temp.File("stash") };
        string last = "";
        for (int i = 0; i < parts.Length; i++)
        {
            Directory.CreateDirectory(incoming);
            File.Copy(_temp.File("stage/manifest"), Path.Combine(incoming, "manifest"), overwrite: true);
            File.Copy(parts[i], Path.Combine(incoming, Path.GetFileName(parts[i])));
            var received = Script(deviceEnv, "receive");
            Assert.True(received.ExitCode == 0, received.Out + received.Error);
            Assert.False(File.Exists(Path.Combine(incoming, Path.GetFileName(parts[i]))), "receive moves the part out of the tree");
            last = received.Out;
            if (i == 0)
                Assert.Contains($"holds 1 of {parts.Length} parts", received.Out, StringComparison.Ordinal);
        }
        Assert.Equal($"gpu-check: holds {parts.Length} of {parts.Length} parts in {_temp.File("stash")}\n", last);

        var unpacked = Script(deviceEnv, "unpack", _temp.File("stash"), _temp.File("app"));
        Assert.True(unpacked.ExitCode == 0, unpacked.Out + unpacked.Error);
        string app = _temp.File("app/publish");
        string[] kept = ["data/emma.txt", "libonnxruntime.so", "onnxquant"];
        Assert.Equal(kept, Files(app));
        foreach (var file in kept)
            Assert.Equal(File.ReadAllBytes(Path.Combine(published, file)), File.ReadAllBytes(Path.Combine(app, file)));
        Assert.True(File.GetUnixFileMode(Path.Combine(app, "onnxquant")).HasFlag(UnixFileMode.UserExecute));
    }

    [Fact]
    public void A_damaged_part_and_a_missing_part_are_refused_by_name()
    {
        var staged = Script(StageEnvironment(FakePublishFolder(), 64 * 1024), "stage");
        Assert.True(staged.ExitCode == 0, staged.Out + staged.Error);
        string stage = _temp.File("stage");

        // All parts there: they join; one gone: joining names it.
        var whole = Script(new Dictionary<string, string>(), "join", stage, _temp.File("joined"));
        Assert.True(whole.ExitCode == 0, whole.Error);
        File.Delete(Path.Combine(stage, "part-02"));
        var missing = Script(new Dictionary<string, string>(), "join", stage, _temp.File("joined"));
        Assert.Equal(3, missing.ExitCode);
        Assert.Contains("missing part-02", missing.Error, StringComparison.Ordinal);

        string part = Path.Combine(stage, "part-01");
        var bytes = File.ReadAllBytes(part);
        bytes[100] ^= 0xFF;
        File.WriteAllBytes(part, bytes);
        var damaged = Script(new Dictionary<string, string> { ["GPU_CHECK_DIR"] = stage, ["GPU_CHECK_STASH"] = _temp.File("stash") }, "receive");
        Assert.Equal(3, damaged.ExitCode);
        Assert.Contains("part-01 arrived damaged", damaged.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void The_report_has_one_row_per_model_with_its_numbers_and_says_where_it_ran()
    {
        string work = Directory.CreateDirectory(_temp.File("work/fp16")).Parent!.FullName;
        File.WriteAllText(Path.Combine(work, "evals.tsv"), "fp16\tmodel\tcuda-only\t14560210\t0\nfp16\tw8a8\tcuda+cpu\t9100000\t0\nfp16\tw4\tcuda-only\t5200000\t4\n");
        File.WriteAllText(Path.Combine(work, "steps.tsv"), "fp16 calibrate\t0\t3.2\n");
        string Eval(double prefill, double step, double ppl) =>
            $"{{\"device\": \"cuda\", \"perplexity\": {{\"perplexity\": {ppl}}}, \"latency\": {{\"prefill_ms\": {prefill}, \"step_ms\": {step}}}}}";
        const string refusal = "{\"error\": {\"message\": \"--device cuda was asked for, but the CUDA execution provider could not start (This session contains graph nodes that are assigned to the default CPU EP, but fallback to CPU EP has been explicitly disabled by the user.). It needs an NVIDIA GPU\"}, \"exit\": 4}";
        File.WriteAllText(Path.Combine(work, "fp16", "model.json"), Eval(1.25, 0.5, 117.87));
        File.WriteAllText(Path.Combine(work, "fp16", "w8a8.json"), Eval(2.5, 0.75, 119.1));
        File.WriteAllText(Path.Combine(work, "fp16", "w8a8.refused.json"), refusal);
        File.WriteAllText(Path.Combine(work, "fp16", "w8a8.placement.log"),
            "[W:onnxruntime:, transformer_memcpy.cc:74 ApplyImpl] 9 Memcpy nodes are added to the graph main_graph for CUDAExecutionProvider.\n" +
            "[W:onnxruntime:, session_state.cc:1166 VerifyEachNodeIsAssignedToAnEp] Some nodes were not assigned to the preferred execution providers which may or may not have an negative impact on performance. e.g. ORT explicitly assigns shape related ops to CPU to improve perf.\n");
        File.WriteAllText(Path.Combine(work, "fp16", "w4.json"), refusal);

        var result = InstalledCli.Run(_repo, Limit, "python3", Path.Combine(_repo, "scripts", "gpu-check", "report.py"), work, _temp.File("gpu.md"), "cpu");

        Assert.True(result.ExitCode == 0, result.Error);
        var rows = File.ReadAllLines(_temp.File("gpu.md")).Where(l => l.StartsWith("| FP16", StringComparison.Ordinal) || l.StartsWith("| W", StringComparison.Ordinal)).ToArray();
        Assert.Equal(3, rows.Length);
        Assert.Equal("| FP16 | 14.6 | 1.250 | 0.500 | 117.870 | CUDA EP only (CPU fallback disabled) |", rows[0]);
        Assert.StartsWith("| W8A8 int8 (s8s8, from FP16) | 9.1 | 2.500 | 0.750 | 119.100 | refused with CPU fallback disabled", rows[1], StringComparison.Ordinal);
        Assert.Contains("(exit 4: This session contains graph nodes that are assigned to the default CPU EP", rows[1], StringComparison.Ordinal);
        Assert.EndsWith("own placement; ONNX Runtime put shape-related ops on the CPU by its own choice; 9 Memcpy nodes added |", rows[1], StringComparison.Ordinal);
        Assert.StartsWith("| W4 MatMulNBits (from FP16) | 5.2 | - | - | - | failed: exit 4: This session contains", rows[2], StringComparison.Ordinal);
        Assert.Contains("fp16 calibrate 3.2 s (exit 0)", File.ReadAllText(_temp.File("gpu.md")), StringComparison.Ordinal);
    }

    // What a publish holds, in small: the executable, a native library (random, so it does not compress), the default
    // text, and what stage drops (TensorRT's provider, symbols, a translation folder).
    private string FakePublishFolder()
    {
        string dir = _temp.File("publish");
        Directory.CreateDirectory(Path.Combine(dir, "data"));
        Directory.CreateDirectory(Path.Combine(dir, "de"));
        File.WriteAllText(Path.Combine(dir, "onnxquant"), "#!/bin/sh\necho onnxquant\n");
        File.SetUnixFileMode(Path.Combine(dir, "onnxquant"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var random = new byte[300_000];
        new Random(26).NextBytes(random);
        File.WriteAllBytes(Path.Combine(dir, "libonnxruntime.so"), random);
        File.WriteAllText(Path.Combine(dir, "data", "emma.txt"), "Emma Woodhouse, handsome, clever, and rich");
        File.WriteAllText(Path.Combine(dir, "libonnxruntime_providers_tensorrt.so"), "not needed");
        File.WriteAllText(Path.Combine(dir, "OnnxQuant.Cli.pdb"), "symbols");
        File.WriteAllText(Path.Combine(dir, "de", "System.CommandLine.resources.dll"), "Übersetzung");
        return dir;
    }

    private Dictionary<string, string> StageEnvironment(string published, int partBytes) => new()
    {
        ["GPU_CHECK_PUBLISHED"] = published,
        ["GPU_CHECK_DIR"] = _temp.File("stage"),
        ["GPU_CHECK_PART_BYTES"] = partBytes.ToString(CultureInfo.InvariantCulture),
        ["GPU_CHECK_XZ_THREADS"] = "1",
    };

    private static string[] Files(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir, f)).Order(StringComparer.Ordinal).ToArray();

    public void Dispose() => _temp.Dispose();
}
