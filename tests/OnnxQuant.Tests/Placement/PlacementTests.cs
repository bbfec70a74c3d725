using System.Text.Json;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.Placement;
using OnnxQuant.Tests.Cli;
using DataType = Onnx.TensorProto.Types.DataType;

namespace OnnxQuant.Tests.Placement;

/// <summary>inspect --ep against ORT 1.31's kernel table, and smooth/awq --target (formats and the fallback warning).</summary>
public sealed class PlacementTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly FixtureOptions Options =
        new() { Family = FixtureFamily.TorchLlama, Layers = 1, Hidden = 32, Heads = 2, Intermediate = 64, Vocab = 64, Seed = 3 };

    private string Model() => FixtureModels.Save(Options, _temp.Path);

    private string Ids() => _temp.RandomIds(Options.Vocab, seed: 1);

    private string Smooth(string name, params string[] options)
    {
        string output = _temp.File(name);
        var run = CliHarness.Run(["smooth", Model(), "--data", Ids(), "--samples", "4", "--seq-len", "16", "--no-verify", "-o", output, .. options]);
        Assert.True(run.ExitCode == 0, run.Error);
        return output;
    }

    private static JsonElement Placement(string model, string ep)
    {
        var run = CliHarness.Run("inspect", model, "--ep", ep, "--json");
        Assert.True(run.ExitCode == 0, run.Error);
        return run.Json().GetProperty("placement");
    }

    private static List<string> FallbackNodes(JsonElement placement) =>
        placement.GetProperty("fallbacks").EnumerateArray().Select(f => f.GetProperty("node").GetString()!).Order().ToList();

    private static List<string> NodesOf(string model, string op)
    {
        using var loaded = ModelFile.Load(model);
        return loaded.Graph.Nodes.Where(n => n.OpType == op).Select(n => n.Name).Order().ToList();
    }

    [Fact]
    public void Inspect_ep_cuda_lists_every_QLinearMatMul_of_a_qlinear_output_and_nothing_of_the_default_int8_output()
    {
        string qlinear = Smooth("qlinear.onnx", "--format", "qlinear");
        var placement = Placement(qlinear, "cuda");
        var qlinearNodes = NodesOf(qlinear, "QLinearMatMul");
        Assert.True(qlinearNodes.Count >= 6, $"{qlinearNodes.Count} QLinearMatMul nodes");
        Assert.Equal(qlinearNodes, FallbackNodes(placement));
        Assert.All(placement.GetProperty("fallbacks").EnumerateArray(), f => Assert.Equal("NoKernel", f.GetProperty("problem").GetString()));
        Assert.Contains("cuda_execution_provider.cc", placement.GetProperty("source").GetString());
        // The same graph has a kernel for every judged node on the CPU.
        Assert.Empty(FallbackNodes(Placement(qlinear, "cpu")));

        string int8 = Smooth("int8.onnx");
        var cuda = Placement(int8, "cuda");
        Assert.True(NodesOf(int8, "MatMulInteger").Count >= 6);
        Assert.Empty(FallbackNodes(cuda));
        Assert.True(cuda.GetProperty("judged").GetInt32() > NodesOf(int8, "MatMulInteger").Count);
    }

    [Fact]
    public void Target_picks_the_format_each_provider_runs_and_the_check_agrees()
    {
        // cpu: uint8 activations, which the CUDA EP's MatMulInteger (s8 x s8 only) does not take.
        string cpu = Smooth("cpu.onnx", "--target", "cpu");
        var matMulIntegers = NodesOf(cpu, "MatMulInteger");
        Assert.NotEmpty(matMulIntegers);
        Assert.Equal(DataType.Uint8, ActivationType(cpu));
        Assert.Empty(FallbackNodes(Placement(cpu, "cpu")));
        var onCuda = Placement(cpu, "cuda");
        Assert.Equal(matMulIntegers, FallbackNodes(onCuda));
        Assert.All(onCuda.GetProperty("fallbacks").EnumerateArray(), f =>
        {
            Assert.Equal("TypeNotRegistered", f.GetProperty("problem").GetString());
            Assert.Contains("is uint8", f.GetProperty("detail").GetString());
        });

        string cuda = Smooth("cuda.onnx", "--target", "cuda");
        Assert.Equal(DataType.Int8, ActivationType(cuda));
        Assert.Empty(FallbackNodes(Placement(cuda, "cuda")));

        // tensorrt: Q/DQ around float MatMuls, nothing TensorRT's parser cannot import; the CPU-only int8 op is absent.
        string trt = Smooth("trt.onnx", "--target", "tensorrt");
        Assert.Empty(NodesOf(trt, "MatMulInteger"));
        Assert.NotEmpty(NodesOf(trt, "DequantizeLinear"));
        Assert.Empty(FallbackNodes(Placement(trt, "tensorrt")));
        // The CPU target's graph on TensorRT: its MatMulIntegers are not imported.
        Assert.Equal(matMulIntegers, FallbackNodes(Placement(cpu, "tensorrt")).Where(n => matMulIntegers.Contains(n)).ToList());
    }

    [Theory]
    [InlineData("cpu", "int8", true), InlineData("cuda", "int8", false), InlineData("tensorrt", "qdq", false)]
    public void The_target_chooses_the_format_the_printed_recipe_records(string target, string format, bool uint8)
    {
        var run = CliHarness.Run("smooth", "model.onnx", "--target", target, "--print-recipe");
        Assert.True(run.ExitCode == 0, run.Error);
        var w8a8 = OnnxQuant.Recipes.RecipeFile.Parse(run.Out, "r.json").Passes.OfType<OnnxQuant.Passes.W8A8RewriteSpec>().Single().Options;
        Assert.Equal(format, w8a8.Format.ToString().ToLowerInvariant());
        Assert.Equal(uint8, w8a8.UnsignedActivations);
        // An explicit --format still wins over the target's choice.
        var explicitFormat = CliHarness.Run("smooth", "model.onnx", "--target", target, "--format", "qlinear", "--print-recipe");
        Assert.Contains("\"format\": \"qlinear\"", explicitFormat.Out);
    }

    [Fact]
    public void A_target_whose_provider_lacks_an_emitted_kernel_is_warned_about_before_the_model_is_written()
    {
        string output = _temp.File("warned.onnx");
        var run = CliHarness.Run("smooth", Model(), "--data", Ids(), "--samples", "4", "--seq-len", "16", "--no-verify",
            "--target", "cuda", "--format", "qlinear", "-o", output);
        Assert.True(run.ExitCode == 0, run.Error);
        int count = NodesOf(output, "QLinearMatMul").Count;
        string warning = $"warning: {count} node(s) of the quantized model would not run on the CUDA EP and fall back to another provider: QLinearMatMul x {count}";
        Assert.Contains(warning, run.Error);
        Assert.True(run.Error.IndexOf(warning, StringComparison.Ordinal) < run.Error.IndexOf("wrote ", StringComparison.Ordinal));

        // W4 MatMulNBits is a com.microsoft op, which TensorRT's parser does not import.
        string w4 = _temp.File("w4.onnx");
        var awq = CliHarness.Run("awq", Model(), "--method", "rtn", "--group-size", "32", "--no-verify", "--target", "tensorrt", "-o", w4);
        Assert.True(awq.ExitCode == 0, awq.Error);
        int nbits = NodesOf(w4, "MatMulNBits").Count;
        Assert.Contains($"MatMulNBits x {nbits}", awq.Error);
        var clean = CliHarness.Run("awq", Model(), "--method", "rtn", "--group-size", "32", "--no-verify", "--target", "cuda", "-o", _temp.File("w4cuda.onnx"));
        Assert.True(clean.ExitCode == 0, clean.Error);
        Assert.DoesNotContain("would not run on", clean.Error);
    }

    [Theory]
    [InlineData("MatMul"), InlineData("Gemm"), InlineData("MatMulInteger"), InlineData("DynamicQuantizeLinear"), InlineData("QuantizeLinear"),
     InlineData("DequantizeLinear"), InlineData("QLinearMatMul"), InlineData("Mul"), InlineData("Cast"), InlineData("Gather")]
    public void The_table_judges_the_ops_OnnxQuant_emits(string op)
    {
        Assert.True(KernelTable.Default.Covers("", op));
        Assert.NotEmpty(KernelTable.Default.Registrations(ExecutionProvider.Cpu, "", op));
    }

    [Fact]
    public void The_table_holds_the_registrations_the_design_relies_on()
    {
        var table = KernelTable.Default;
        foreach (var op in new[] { "MatMulNBits", "GatherBlockQuantized", "DynamicQuantizeMatMul", "MatMulIntegerToFloat" })
            Assert.True(table.Covers("com.microsoft", op), op);
        // CUDA: MatMulInteger for int8 x int8 only; no DynamicQuantizeLinear, QLinearMatMul, MatMulIntegerToFloat, DynamicQuantizeMatMul.
        var cudaInteger = Assert.Single(table.Registrations(ExecutionProvider.Cuda, "", "MatMulInteger"));
        Assert.Equal(["int8"], cudaInteger.Inputs!["0"]);
        Assert.Empty(table.Registrations(ExecutionProvider.Cuda, "", "DynamicQuantizeLinear"));
        Assert.Empty(table.Registrations(ExecutionProvider.Cuda, "", "QLinearMatMul"));
        Assert.Empty(table.Registrations(ExecutionProvider.Cuda, "com.microsoft", "MatMulIntegerToFloat"));
        Assert.Empty(table.Registrations(ExecutionProvider.Cuda, "com.microsoft", "DynamicQuantizeMatMul"));
        Assert.NotEmpty(table.Registrations(ExecutionProvider.Cuda, "com.microsoft", "MatMulNBits"));
        // TensorRT's parser: ONNX domain only.
        Assert.Empty(table.Registrations(ExecutionProvider.TensorRt, "com.microsoft", "MatMulNBits"));
        Assert.Empty(table.Registrations(ExecutionProvider.TensorRt, "", "MatMulInteger"));
        foreach (var ep in Enum.GetValues<ExecutionProvider>())
            Assert.Contains(".", table.Source(ep));
    }

    // The element type of the first MatMulInteger's activation input (its QuantizeLinear's zero point).
    private static DataType ActivationType(string model)
    {
        using var loaded = ModelFile.Load(model);
        var facts = OnnxQuant.Analysis.ValueFacts.Infer(loaded.Graph);
        var node = loaded.Graph.Nodes.First(n => n.OpType == "MatMulInteger");
        return facts.TypeOf(node.Input[0]) ?? DataType.Undefined;
    }
}
