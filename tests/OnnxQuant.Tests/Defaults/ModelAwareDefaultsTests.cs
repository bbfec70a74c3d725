using Onnx;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.Passes;
using OnnxQuant.Tests.Cli;
using OnnxQuant.Tests.Fixtures;

namespace OnnxQuant.Tests.Defaults;

/// <summary>
/// Defaults chosen from the model and the target (issue 26): calibration windows by task, GPTQ's rows by K, the budget's
/// method, dampening and ranking, the W4 form per target, and the runtime asked before CUDA is touched.
/// </summary>
public sealed class ModelAwareDefaultsTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly FixtureOptions Llama =
        new() { Family = FixtureFamily.TorchLlama, Layers = 2, Hidden = 64, Heads = 4, Intermediate = 128, Vocab = 128, OutlierChannels = 3, Seed = 3 };

    private static readonly FixtureOptions Bert =
        new() { Family = FixtureFamily.Bert, Layers = 2, Hidden = 64, Heads = 4, Intermediate = 128, Vocab = 128, Seed = 4 };

    private string Ids(int count, int vocab)
    {
        string path = _temp.File($"calib{count}.ids");
        var rng = new Random(count);
        File.WriteAllText(path, string.Join(" ", Enumerable.Range(0, count).Select(_ => rng.Next(vocab))));
        return path;
    }

    [Fact]
    public void An_encoder_calibrates_on_paragraph_sized_windows_and_a_causal_lm_on_long_ones()
    {
        string encoder = FixtureModels.Save(Bert, Path.Combine(_temp.Path, "bert"));
        string decoder = FixtureModels.Save(Llama, Path.Combine(_temp.Path, "llama"));
        string ids = Ids(4096, 128);

        var bert = CliHarness.Run("calibrate", encoder, "--data", ids, "--samples", "4", "--device", "cpu", "-o", _temp.File("bert.calib"));
        Assert.True(bert.ExitCode == 0, bert.Error);
        Assert.Contains("calibrating on " + Path.GetFileName(ids) + ": 4 x 128 tokens (paragraph-sized windows for an encoder; --seq-len to change)", bert.Error);

        var llama = CliHarness.Run("calibrate", decoder, "--data", ids, "--samples", "4", "--device", "cpu", "-o", _temp.File("llama.calib"));
        Assert.True(llama.ExitCode == 0, llama.Error);
        Assert.Contains("4 x 512 tokens (long windows for a causal LM; --seq-len to change)", llama.Error);

        // A length given is used as given, and the line says nothing of defaults.
        var given = CliHarness.Run("calibrate", encoder, "--data", ids, "--samples", "4", "--seq-len", "64", "--device", "cpu", "-o", _temp.File("given.calib"));
        Assert.True(given.ExitCode == 0, given.Error);
        Assert.Contains(": 4 x 64 tokens\n", given.Error.Replace("\r", ""));
    }

    [Fact]
    public void Gptq_refuses_a_statistics_file_with_fewer_rows_than_its_widest_input()
    {
        string model = FixtureModels.Save(Llama, _temp.Path);
        string ids = Ids(4096, Llama.Vocab);
        string few = _temp.File("few.calib"), enough = _temp.File("enough.calib");
        Assert.Equal(0, CliHarness.Run("calibrate", model, "--data", ids, "--samples", "8", "--seq-len", "64", "--sample-rows", "64", "--device", "cpu", "-o", few).ExitCode);
        Assert.Equal(0, CliHarness.Run("calibrate", model, "--data", ids, "--samples", "8", "--seq-len", "64", "--sample-rows", "256", "--device", "cpu", "-o", enough).ExitCode);

        var refused = CliHarness.Run("awq", model, "--method", "gptq", "--stats", few, "--no-verify", "--device", "cpu", "-o", _temp.File("gptq.onnx"));
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("holds 64 activation rows", refused.Error);
        Assert.Contains("GPTQ needs at least 128", refused.Error);   // the down projection's K
        Assert.Contains("--sample-rows 2048", refused.Error);
        Assert.False(File.Exists(_temp.File("gptq.onnx")));

        var accepted = CliHarness.Run("awq", model, "--method", "gptq", "--stats", enough, "--no-verify", "--device", "cpu", "-o", _temp.File("gptq.onnx"));
        Assert.True(accepted.ExitCode == 0, accepted.Error);
    }

    [Fact]
    public void An_input_that_saw_fewer_tokens_than_K_is_not_refused_since_more_rows_would_not_change_it()
    {
        // The encoder's pooler reads one row per sample: 8 rows of 64 inputs, all it saw; the other inputs hold 256 of 512.
        string model = FixtureModels.Save(Bert, _temp.Path);
        string stats = _temp.File("bert.calib");
        Assert.Equal(0, CliHarness.Run("calibrate", model, "--data", Ids(4096, Bert.Vocab), "--samples", "8", "--seq-len", "64", "--sample-rows", "256",
            "--device", "cpu", "-o", stats).ExitCode);
        var run = CliHarness.Run("awq", model, "--method", "gptq", "--stats", stats, "--no-verify", "--device", "cpu", "-o", _temp.File("gptq.onnx"));
        Assert.True(run.ExitCode == 0, run.Error);
    }

    [Fact]
    public void A_size_budget_alone_rounds_with_awq_gptq_auto_dampening_and_the_model_output_ranking()
    {
        string model = FixtureModels.Save(Llama, _temp.Path);
        var run = CliHarness.Run("awq", model, "--data", Ids(2048, Llama.Vocab), "--samples", "8", "--seq-len", "64", "--group-size", "32", "--device", "cpu",
            "--bits-budget", "6", "--no-verify", "--json", "-o", _temp.File("mixed.onnx"));
        Assert.True(run.ExitCode == 0, run.Error);
        var json = run.Json();
        Assert.Equal("awq-gptq", json.GetProperty("method").GetString());
        Assert.Equal("model", json.GetProperty("mixed_precision").GetProperty("sensitivity").GetString());
        Assert.Contains("note: mixed precision ranks linears by the model's output error (14 linears", run.Error);
        var printed = CliHarness.Run("awq", model, "--bits-budget", "6", "--print-recipe");
        Assert.Contains("\"damp\": \"auto\"", printed.Out);
        Assert.Contains("\"sensitivity\": \"auto\"", printed.Out);
    }

    [Theory]
    [InlineData(BitsSensitivity.Auto, 37, 10_800_000L, BitsSensitivity.ModelOutput)]      // MiniLM's linears
    [InlineData(BitsSensitivity.Auto, 224, 6_476_000_000L, BitsSensitivity.LinearOutput)] // a 7B Llama's
    [InlineData(BitsSensitivity.LinearOutput, 1, 1L, BitsSensitivity.LinearOutput)]
    [InlineData(BitsSensitivity.ModelOutput, 224, 6_476_000_000L, BitsSensitivity.ModelOutput)]
    public void Auto_ranking_takes_the_model_output_only_where_it_is_affordable(BitsSensitivity asked, int linears, long parameters, BitsSensitivity expected) =>
        Assert.Equal(expected, BitsSensitivities.Resolve(asked, linears, parameters));

    [Fact]
    public void Target_cpu_emits_int8_compute_symmetric_blocks_and_target_cuda_refuses_blocks_over_128()
    {
        string model = FixtureModels.Save(Llama, _temp.Path);
        var cpu = CliHarness.Run("awq", model, "--method", "rtn", "--target", "cpu", "--group-size", "32", "--no-verify", "-o", _temp.File("cpu.onnx"));
        Assert.True(cpu.ExitCode == 0, cpu.Error);
        var plain = CliHarness.Run("awq", model, "--method", "rtn", "--group-size", "32", "--no-verify", "-o", _temp.File("plain.onnx"));
        Assert.True(plain.ExitCode == 0, plain.Error);
        Assert.Equal((14, 4L, 0), Form(_temp.File("cpu.onnx")));
        Assert.Equal((14, 0L, 14), Form(_temp.File("plain.onnx")));
        // inspect --ep names the nodes a provider runs off its fast kernel: level 0 on the CPU, none once --target cpu chose.
        Assert.Equal(14, SlowPaths(_temp.File("plain.onnx"), "cpu"));
        Assert.Equal(0, SlowPaths(_temp.File("cpu.onnx"), "cpu"));
        Assert.Equal(0, SlowPaths(_temp.File("plain.onnx"), "cuda"));

        var cuda = CliHarness.Run("awq", model, "--method", "rtn", "--target", "cuda", "--group-size", "256", "--no-verify", "-o", _temp.File("cuda.onnx"));
        Assert.Equal(2, cuda.ExitCode);
        Assert.Contains("--group-size 128 or less", cuda.Error);
        Assert.False(File.Exists(_temp.File("cuda.onnx")));
    }

    private static int SlowPaths(string model, string ep)
    {
        var run = CliHarness.Run("inspect", model, "--ep", ep, "--json");
        Assert.True(run.ExitCode == 0, run.Error);
        return run.Json().GetProperty("placement").GetProperty("slow_paths").GetArrayLength();
    }

    // MatMulNBits nodes, their accuracy_level (all alike) and how many carry zero points.
    private static (int Nodes, long Level, int WithZeroPoints) Form(string path)
    {
        using var model = ModelFile.Load(path);
        var nodes = model.Graph.Nodes.Where(n => n.OpType == "MatMulNBits").ToList();
        long level = nodes.Select(n => n.Attribute.FirstOrDefault(a => a.Name == "accuracy_level")?.I ?? 0).Distinct().Single();
        return (nodes.Count, level, nodes.Count(n => n.Input.Count > 3 && n.Input[3].Length > 0));
    }

    [Fact]
    public void The_test_build_carries_a_runtime_with_the_cuda_provider() =>
        // The packed tool's CPU-only runtime answers false (PackedToolTests run every command on it); the source build's says true.
        Assert.True(SessionFactory.RuntimeHasCuda());
}
