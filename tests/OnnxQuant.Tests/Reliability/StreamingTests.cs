using OnnxQuant.IO;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;
using OnnxQuant.Statistics;
using OnnxQuant.Tests.Cli;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Reliability;

/// <summary>
/// The test-sized version of bench/OnnxQuant.Bench.Streaming: a ~34 MB fp16 Llama written streamed, then quantized with
/// a spill file attached the way the CLI does. Every tensor a pass creates must be on disk (spilled) rather than in
/// memory, every untouched weight must still be a mapping of the input, and the results must run in ONNX Runtime.
/// </summary>
public sealed class StreamingTests : IClassFixture<StreamingTests.Model>
{
    /// <summary>34 MB of fp16 weights: 4 layers, hidden 512, SwiGLU 1408, vocab 4096.</summary>
    public static readonly StreamedLlamaOptions Size = new() { Layers = 4, Hidden = 512, Heads = 8, Intermediate = 1408, Vocab = 4096 };

    /// <summary>New tensors of at least this size spill (the CLI's default is 1 MiB; lower here so the small model spills).</summary>
    private const long SpillThreshold = 64 << 10;

    public sealed class Model : IDisposable
    {
        private readonly TempFolder _folder = new();

        public Model() => Path = StreamedLlama.Write(Size, _folder.File("in"));

        public string Path { get; }

        public void Dispose() => _folder.Dispose();
    }

    private readonly Model _model;

    public StreamingTests(Model model) => _model = model;

    [Fact]
    public void The_streamed_model_is_what_it_claims_and_runs()
    {
        long data = new FileInfo(_model.Path + ".data").Length;
        long gammas = (2L * Size.Layers + 1) * Size.Hidden * 2; // small, inline in the proto
        Assert.InRange(data, Size.WeightBytes - gammas, Size.WeightBytes - gammas + 64L * 4096);
        using (var loaded = ModelFile.Load(_model.Path))
        {
            var big = loaded.Graph.Initializers.Values.Where(t => t.ByteLength >= 1 << 16).ToList();
            Assert.Equal(7 * Size.Layers + 2, big.Count);
            Assert.All(big, t => Assert.True(t.IsMapped, t.Name));
            Assert.Equal(Size.LargestTensorBytes, big.Max(t => t.ByteLength));
        }
        var logits = RunLogits(_model.Path, 12);
        Assert.Equal([1, 12, Size.Vocab], logits.Shape);
        Assert.All(logits.Values, v => Assert.True(float.IsFinite(v)));
        float spread = logits.Values.Max() - logits.Values.Min();
        Assert.InRange(spread, 0.1f, 1e4f); // not collapsed to a constant, not exploded
    }

    /// <summary>
    /// The fingerprint samples a few bytes of every weight; each touch faults in the kernel's read-around, which used to
    /// stay resident until a pass read that weight (450 MB of a 3.8 GB model before the first linear).
    /// </summary>
    [Fact]
    public void Fingerprinting_a_mapped_model_leaves_none_of_its_data_resident()
    {
        using var loaded = ModelFile.Load(_model.Path);
        string data = _model.Path + ".data";
        Assert.True(new FileInfo(data).Length > 30_000_000);
        ModelFingerprint.Compute(loaded.Graph);
        long resident = ResidentBytesOfMapping(data);
        Assert.True(resident < 256 << 10, $"{resident} bytes of {data} still resident after fingerprinting");
        // The check can see residency: reading every weight without releasing faults the whole file in.
        long sum = 0;
        foreach (var tensor in loaded.Graph.Initializers.Values.Where(t => t.IsMapped))
            foreach (byte b in tensor.RawBytes)
                sum += b;
        Assert.True(ResidentBytesOfMapping(data) > 30_000_000, $"reading the weights (sum {sum}) did not show in /proc/self/smaps");
    }

    /// <summary>The Rss of every mapping of <paramref name="file"/> in this process (/proc/self/smaps).</summary>
    private static long ResidentBytesOfMapping(string file)
    {
        string full = Path.GetFullPath(file);
        long total = 0;
        bool inside = false;
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            if (line.Length > 0 && char.IsAsciiHexDigit(line[0]) && line.Contains('-'))
                inside = line.EndsWith(full, StringComparison.Ordinal);
            else if (inside && line.StartsWith("Rss:", StringComparison.Ordinal))
                total += long.Parse(line[4..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
        }
        return total;
    }

    [Fact]
    public void W4_rtn_keeps_new_tensors_on_disk_and_the_output_runs()
    {
        using var dir = new TempFolder();
        string output = dir.File("w4.onnx");
        var (spilled, unchanged) = Quantize(output, new W4RewritePass(new W4RewriteOptions()));
        // One packed weight per linear is above the threshold (the scales, [N, K/128] fp16, are a few KiB).
        Assert.Equal(7 * Size.Layers, spilled.Count(n => n.EndsWith("_Q4", StringComparison.Ordinal)));
        Assert.Contains("lm_head.weight_T", unchanged); // kept (lm_head), still a mapping of the input
        AssertRuns(output, "MatMulNBits", 7 * Size.Layers);
    }

    [Fact]
    public void W8_dynamic_keeps_new_tensors_on_disk_and_the_output_runs()
    {
        using var dir = new TempFolder();
        string output = dir.File("w8.onnx");
        var pass = new W8A8RewritePass(new W8A8Options { Format = W8A8Format.Dynamic }, new OnnxQuant.Analysis.LinearSelection());
        var (spilled, unchanged) = Quantize(output, pass);
        Assert.Equal(7 * Size.Layers, spilled.Count(n => n.EndsWith("_int8", StringComparison.Ordinal)));
        Assert.Contains("model.embed_tokens.weight", unchanged);
        AssertRuns(output, "MatMulInteger", 7 * Size.Layers);
    }

    /// <summary>
    /// Run last, the rewrite starts copying the input's weights it keeps (embedding, LM head) into the spill before it
    /// computes, so the adopted data file holds them ahead of every rewritten weight, with no byte between tensors to
    /// spare; not last, it leaves them to the save, which appends them after. Both outputs hold the same values.
    /// </summary>
    [Fact]
    public void The_last_rewrite_copies_the_kept_weights_ahead_and_an_earlier_one_leaves_them_to_the_save()
    {
        using var dir = new TempFolder();
        string[] kept = ["model.embed_tokens.weight", "lm_head.weight_T"];
        Quantize(dir.File("last.onnx"), new W4RewritePass(new W4RewriteOptions()));
        Quantize(dir.File("earlier.onnx"), new W4RewritePass(new W4RewriteOptions()), new NoOpPass());
        var last = DataOffsets(dir.File("last.onnx"));
        var earlier = DataOffsets(dir.File("earlier.onnx"));
        bool direct;
        using (var probe = new OnnxQuant.IR.SpillFile(dir.Path, mayBecomeOutput: true))
            direct = probe.CanBecomeNamed && probe.WritesDirect;
        var rewrittenLast = last.Where(p => p.Key.EndsWith("_Q4", StringComparison.Ordinal)).Select(p => p.Value).ToList();
        var rewrittenEarlier = earlier.Where(p => p.Key.EndsWith("_Q4", StringComparison.Ordinal)).Select(p => p.Value).ToList();
        Assert.Equal(7 * Size.Layers, rewrittenLast.Count);
        if (direct)
        {
            Assert.All(kept, name => Assert.True(last[name] < rewrittenLast.Min(), $"{name} at {last[name]}, first rewritten weight at {rewrittenLast.Min()}"));
            Assert.All(kept, name => Assert.True(earlier[name] > rewrittenEarlier.Max(), $"{name} at {earlier[name]}, last rewritten weight at {rewrittenEarlier.Max()}"));
        }
        Assert.Equal(TiledLength(dir.File("last.onnx")), new FileInfo(dir.File("last.onnx.data")).Length);
        Assert.Equal(TiledLength(dir.File("earlier.onnx")), new FileInfo(dir.File("earlier.onnx.data")).Length);
        using var a = ModelFile.Load(dir.File("last.onnx"));
        using var b = ModelFile.Load(dir.File("earlier.onnx"));
        Assert.Equal(a.Graph.Initializers.Keys.Order(), b.Graph.Initializers.Keys.Order());
        foreach (var (name, tensor) in a.Graph.Initializers)
            Assert.True(tensor.RawBytes.SequenceEqual(b.Graph.Initializers[name].RawBytes), name);
    }

    /// <summary>
    /// The CLI path: `awq --method rtn` writes exactly the model and its data file; the spill file was unlinked at birth
    /// and nothing else is left in the output folder.
    /// </summary>
    [Fact]
    public void Cli_rtn_leaves_only_the_model_and_its_data_in_the_output_folder()
    {
        using var dir = new TempFolder();
        var r = CliHarness.Run("awq", _model.Path, "--method", "rtn", "--no-verify", "-o", dir.File("q.onnx"));
        Assert.True(r.ExitCode == 0, r.Error);
        Assert.Equal(["q.onnx", "q.onnx.data"], dir.FileNames());
        Assert.Empty(Directory.GetFiles(dir.Path, ".*"));
    }

    // Runs the pass with a spill file attached as the CLI does; returns the names of spilled new tensors and of the
    // input tensors still mapped, after asserting that every large tensor lives on disk.
    private (List<string> Spilled, List<string> Unchanged) Quantize(string output, IGraphPass pass, IGraphPass? after = null)
    {
        using var model = ModelFile.Load(_model.Path);
        var before = model.Graph.Initializers.Keys.ToHashSet();
        using var spill = OutputPaths.AttachSpill(model, output);
        model.Graph.SpillThreshold = SpillThreshold;
        var pipeline = new Pipeline().Add(pass);
        if (after is not null)
            pipeline.Add(after);
        var steps = pipeline.Run(model, new PassContext());
        Assert.True(steps[0].Result.Changed);

        var large = model.Graph.Initializers.Values.Where(t => t.ByteLength >= SpillThreshold).ToList();
        Assert.All(large, t => Assert.True(t.IsOnDisk, $"{t.Name} ({t.ByteLength} bytes) is held in memory"));
        var spilled = large.Where(t => !before.Contains(t.Name)).ToList();
        Assert.All(spilled, t => Assert.False(t.IsMapped, t.Name));
        Assert.True(spill.Length >= spilled.Sum(t => t.ByteLength), $"spill file {spill.Length} bytes");
        var unchanged = large.Where(t => before.Contains(t.Name) && t.IsMapped).Select(t => t.Name).ToList();

        ModelFile.Save(model, output);
        return (spilled.Select(t => t.Name).ToList(), unchanged);
    }

    private sealed class NoOpPass : IGraphPass
    {
        public string Name => "no-op";

        public PassResult Run(OnnxModel model, PassContext context) => PassResult.Unchanged;
    }

    private static Dictionary<string, long> DataOffsets(string modelPath)
    {
        var proto = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(modelPath));
        return proto.Graph.Initializer.Where(t => t.DataLocation == Onnx.TensorProto.Types.DataLocation.External)
            .ToDictionary(t => t.Name, t => long.Parse(t.ExternalData.Single(e => e.Key == "offset").Value));
    }

    // The data file's length when its tensors follow one another at 4 KiB boundaries, none repeated, nothing dead between.
    private static long TiledLength(string modelPath)
    {
        var proto = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(modelPath));
        long end = 0;
        foreach (var t in proto.Graph.Initializer.Where(t => t.DataLocation == Onnx.TensorProto.Types.DataLocation.External)
                     .Select(t => (Offset: long.Parse(t.ExternalData.Single(e => e.Key == "offset").Value), Length: long.Parse(t.ExternalData.Single(e => e.Key == "length").Value)))
                     .OrderBy(t => t.Offset))
        {
            Assert.Equal((end + 4095) / 4096 * 4096, t.Offset);
            end = t.Offset + t.Length;
        }
        return end;
    }

    private static void AssertRuns(string path, string op, int expected)
    {
        using (var saved = ModelFile.Load(path))
            Assert.Equal(expected, saved.Graph.Nodes.Count(n => n.OpType == op));
        var logits = RunLogits(path, 8);
        Assert.Equal([1, 8, Size.Vocab], logits.Shape);
        Assert.All(logits.Values, v => Assert.True(float.IsFinite(v)));
    }

    private static OrtResult RunLogits(string path, int tokens)
    {
        var ids = Enumerable.Range(0, tokens).Select(i => (long)(i * 37 % Size.Vocab)).ToArray();
        var feeds = new Dictionary<string, OrtFeed> { ["input_ids"] = OrtFeed.Int64(ids, 1, tokens) };
        return OrtRunner.RunOnce(path, feeds)["logits"];
    }
}
