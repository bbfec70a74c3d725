using Google.Protobuf;
using OnnxQuant.Analysis;
using OnnxQuant.Awq;
using OnnxQuant.Calibrate.BlockEvaluation;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Passes;
using OnnxQuant.Quantization;
using OnnxQuant.Smoothing;
using OnnxQuant.Tests.Fixtures;
using Xunit.Abstractions;

namespace OnnxQuant.Tests.Awq;

/// <summary>The block a group feeds, and AWQ's block loss measured by running it in ONNX Runtime.</summary>
public sealed class BlockLossTests
{
    private static readonly Int4QuantOptions Q32 = new() { BlockSize = 32 };
    private readonly ITestOutputHelper _output;

    public BlockLossTests(ITestOutputHelper output) => _output = output;

    private static FixtureOptions Fixture(FixtureFamily family) =>
        new() { Family = family, Layers = 2, Hidden = 64, Heads = 4, Intermediate = 128, Vocab = 128, OutlierChannels = 3, Seed = 3 };

    [Theory]
    [InlineData(FixtureFamily.TorchLlama, "o_proj", "down_proj")]
    [InlineData(FixtureFamily.GenAiLlama, "o_proj", "down_proj")]
    [InlineData(FixtureFamily.Bert, "attention/output/dense", "output/dense")]
    public void BlocksEndAtTheNextLinearBeforeTheResidual(FixtureFamily family, string attentionEnd, string mlpEnd)
    {
        using var model = FixtureModels.BuildModel(Fixture(family));
        var groups = SmoothingGroups.Find(model.Graph);
        int attention = 0, mlp = 0, none = 0;
        foreach (var group in groups)
        {
            var block = BlockSubgraph.Find(model.Graph, group);
            _output.WriteLine($"{group.Activation} -> {block?.Description ?? "none"} ({block?.Nodes.Count ?? 0} nodes, side: {string.Join(", ", block?.SideInputs ?? [])})");
            int consumers = group.Consumers.Count;
            if (block is null) { none++; continue; }
            if (consumers == 3) { Assert.Contains(attentionEnd, block.End.Name); attention++; }
            else if (block.End.Name.Contains(mlpEnd) && !block.End.Name.Contains("attention")) mlp++;
            Assert.Contains(block.End.Node, block.Nodes);
            Assert.DoesNotContain(block.Nodes, n => group.Consumers.All(c => !ReferenceEquals(c.Node, n)) && n.Input.Contains(group.Activation)
                && !n.IsOnnx("Mul"));   // only consumers (or an inserted scaling Mul) read the activation
        }
        Assert.Equal(2, attention);
        Assert.Equal(2, mlp);
        Assert.True(none >= 4, $"o/down/head groups should have no block ({none})");
    }

    // Independent check of the loss: quantize q/k/v in a copy of the whole model and compare o_proj's output with the
    // float model's, both computed by ORT on the full graph.
    [Fact]
    public void BlockLossEqualsTheFullModelsBlockOutputError()
    {
        var options = Fixture(FixtureFamily.TorchLlama);
        var rng = new Random(4);
        var windows = Enumerable.Range(0, 2).Select(_ => Enumerable.Range(0, 16).Select(_ => rng.Next(options.Vocab)).ToArray()).ToList();
        using var model = FixtureModels.BuildModel(options);
        var group = SmoothingGroups.Find(model.Graph).First(g => g.Consumers.Count == 3);
        var evaluator = new OrtBlockEvaluator(windows, new SessionSettings { Device = ExecutionDevice.Cpu, Threads = 1 });
        using var loss = evaluator.TryCreate(model, group)!;
        Assert.NotNull(loss);
        var ones = Enumerable.Repeat(1f, group.Channels).ToArray();
        double blockLoss = loss.Loss(ones, Q32);

        var block = BlockSubgraph.Find(model.Graph, group)!;
        var feeds = FixtureFeeds.For(options, 2, 16, ids: windows.SelectMany(w => w.Select(t => (long)t)).ToArray());
        var reference = FixtureFeeds.Run(FixtureModels.Build(options), feeds, block.Output)[block.Output].Values;
        using (var quantized = FixtureModels.BuildModel(options))
        {
            foreach (var c in group.Consumers)
            {
                var linear = LinearNode.TryCreate(quantized.Graph, quantized.Graph.Nodes.Single(n => n.Name == c.Name))!;
                var w = linear.ReadWeightKN(quantized.Graph);
                Int4BlockQuantizer.FakeQuantizeInPlace(w, linear.K, linear.N, Q32);
                quantized.Graph.SetInitializer(linear.MakeWeight(w));
            }
            var proto = SessionProto.Build(quantized, out _);
            var actual = FixtureFeeds.Run(proto, feeds, block.Output)[block.Output].Values;
            double mse = actual.Zip(reference).Average(p => (double)(p.First - p.Second) * (p.First - p.Second));
            _output.WriteLine($"block loss {blockLoss:g6}, full-model o_proj MSE {mse:g6}");
            Assert.True(mse > 0);
            Assert.Equal(mse, blockLoss, 1e-3 * mse);
        }
    }

    [Fact]
    public void AwqWithBlockLossBeatsRoundToNearest()
    {
        var options = Fixture(FixtureFamily.TorchLlama);
        var h = new AwqFixtureHarness(options);
        var rng = new Random(5);
        var windows = Enumerable.Range(0, 4).Select(_ => Enumerable.Range(0, 32).Select(_ => rng.Next(options.Vocab)).ToArray()).ToList();
        var evaluator = new OrtBlockEvaluator(windows, new SessionSettings { Device = ExecutionDevice.Cpu, Threads = 1 });
        var awq = new AwqPass(new AwqPassOptions { Search = new AwqOptions { Quantization = Q32 }, BlockLoss = true });
        double rtn = h.RelativeError(h.Run(h.Apply(new W4RewritePass(new W4RewriteOptions { Quantization = Q32 }))), "logits");
        h.BlockEvaluator = evaluator;
        double awqError = h.RelativeError(h.Run(h.Apply(awq, new W4RewritePass(new W4RewriteOptions { Quantization = Q32 }))), "logits");
        var decisions = h.Last.Get<AwqReport>("test").Decisions;
        foreach (var d in decisions)
            _output.WriteLine($"{d.Activation}: {d.Loss} {d.StatusText} r={d.Ratio:0.00} awq/rtn={d.LossRatio:0.000}");
        _output.WriteLine($"RTN {rtn:g4}, AWQ (block loss) {awqError:g4}");
        Assert.Equal(4, decisions.Count(d => d.Loss.StartsWith("block")));
        Assert.Equal(4, evaluator.BlocksEvaluated);
        Assert.True(awqError < 0.5 * rtn, $"AWQ {awqError:g4} vs RTN {rtn:g4}");
    }
}
