using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;
using OnnxQuant.Tests.W8A8;
using Xunit.Abstractions;

namespace OnnxQuant.Tests.Smoothing;

/// <summary>
/// Linears inside If/Loop bodies that read a main-graph activation join its smoothing group: their rows take s, so the
/// group folds in place and no linear is quantized against an activation its group left unsmoothed (issue 31).
/// </summary>
public class SubgraphSmoothingTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(SubgraphShape.IfQueryProjection, "self_attn/q_proj")]
    [InlineData(SubgraphShape.IfDownProjection, "mlp/down_proj")]
    [InlineData(SubgraphShape.LoopQueryProjection, "self_attn/q_proj")]
    public void BodyLinearsAreSmoothedWithTheirGroupAndTheErrorIsTheFlatModels(SubgraphShape shape, string role)
    {
        var flat = W8A8TestKit.OutlierLlama();
        var nested = flat with { Subgraphs = shape };
        var windows = W8A8TestKit.Tokens(flat.Vocab, 3, 16, seed: 31);

        var (flatError, _, _, _) = Quantize(flat, windows);
        var (nestedError, smoothing, rewrite, unused) = Quantize(nested, windows);
        output.WriteLine($"{shape}: relative logits error {nestedError:E3}, the same model without bodies {flatError:E3}");

        // Every body linear of the role is in one group that applied s, and is quantized (with a static scale).
        var bodyLinears = rewrite.Decisions.Where(d => d.Scope is not null && d.Linear.Contains(role, StringComparison.Ordinal)).ToList();
        int perLayer = shape == SubgraphShape.LoopQueryProjection ? 1 : 2;
        Assert.Equal(flat.Layers * perLayer, bodyLinears.Count);
        Assert.All(bodyLinears, d => Assert.True(d.Quantized && d.ActivationScale is not null, $"{d.Scope}/{d.Linear}: {d.Status}"));
        foreach (var d in bodyLinears)
        {
            var group = Assert.Single(smoothing.Decisions, g => g.Consumers.Contains($"{d.Scope}/{d.Linear}"));
            Assert.Equal(SmoothingStatus.Folded, group.Status);
        }
        // Smoothed like the flat model: before the fix the If-held q_proj read the raw norm output (0.5 on tiny-llama).
        Assert.True(nestedError <= flatError * 1.02 + 1e-4, $"{shape}: {nestedError:E3} vs flat {flatError:E3}");
        // The float weights the bodies read before are gone, not left as initializers nothing reads.
        Assert.Empty(unused);
    }

    [Fact]
    public void Body_linears_read_an_inserted_smoothing_Mul_when_the_activation_has_other_readers()
    {
        // The attention norm's output of layer 0 is also a graph output: only a Mul(1/s) can smooth its linears.
        const string norm = "/model/layers.0/input_layernorm/Mul_1_output_0";
        static Onnx.ModelProto WithNormOutput(FixtureOptions o)
        {
            var proto = FixtureModels.Build(o);
            var type = new Onnx.TypeProto { TensorType = new Onnx.TypeProto.Types.Tensor { ElemType = proto.Graph.Output[0].Type.TensorType.ElemType } };
            proto.Graph.Output.Add(new Onnx.ValueInfoProto { Name = norm, Type = type });
            return proto;
        }
        var flat = W8A8TestKit.OutlierLlama();
        var windows = W8A8TestKit.Tokens(flat.Vocab, 3, 16, seed: 31);
        var insert = new SmoothQuantOptions { InsertMul = true };

        var (flatError, _, _, _) = Quantize(flat, windows, insert, () => WithNormOutput(flat));
        var nestedOptions = flat with { Subgraphs = SubgraphShape.IfQueryProjection };
        var (nestedError, smoothing, rewrite, unused) = Quantize(nestedOptions, windows, insert, () => WithNormOutput(nestedOptions));
        output.WriteLine($"inserted Mul: relative logits error {nestedError:E3}, without bodies {flatError:E3}");

        var group = Assert.Single(smoothing.Decisions, d => d.Activation == norm);
        Assert.Equal(SmoothingStatus.Inserted, group.Status);
        Assert.Equal(4, group.Consumers.Count); // k, v and the two branches' q
        var branches = rewrite.Decisions.Where(d => d.Scope?.StartsWith("/model/layers.0/", StringComparison.Ordinal) == true).ToList();
        Assert.Equal(2, branches.Count);
        Assert.All(branches, d => Assert.NotEqual(norm, d.Activation)); // they read the Mul's output
        Assert.True(nestedError <= flatError * 1.02 + 1e-4, $"{nestedError:E3} vs flat {flatError:E3}");
        Assert.Empty(unused);
    }

    [Fact]
    public void Awq_scales_the_body_linears_rows_with_their_group()
    {
        var flat = W8A8TestKit.OutlierLlama();
        var nested = flat with { Subgraphs = SubgraphShape.IfQueryProjection };
        var windows = W8A8TestKit.Tokens(flat.Vocab, 3, 16, seed: 31);
        double Error(FixtureOptions o, out AwqReport report)
        {
            float[] reference;
            using (var fp = FixtureModels.BuildModel(o))
                reference = W8A8TestKit.Run(W8A8TestKit.Serialize(fp), windows);
            using var calibrationModel = FixtureModels.BuildModel(o);
            var stats = W8A8TestKit.Calibrate(calibrationModel, o.Vocab, samples: 64, length: 32);
            using var model = FixtureModels.BuildModel(o);
            var analyses = OnnxQuant.Tests.Support.PassRun.Analyses(stats);
            var blocks = new OnnxQuant.Quantization.Int4QuantOptions { BlockSize = 32 };
            Presets.Awq(new W4RewriteOptions { Quantization = blocks },
                new AwqPassOptions { Search = new OnnxQuant.Awq.AwqOptions { Quantization = blocks, GridPoints = 5 } })
                .Build().Run(model, new PassContext { Analyses = analyses });
            report = analyses.Get<AwqReport>("test");
            Assert.Empty(UnusedInitializers.Find(model.Graph));
            return W8A8TestKit.RelativeError(reference, W8A8TestKit.Run(W8A8TestKit.Serialize(model), windows));
        }

        double flatError = Error(flat, out _), nestedError = Error(nested, out var awq);
        output.WriteLine($"AWQ W4: relative logits error {nestedError:E3}, without bodies {flatError:E3}");

        var group = Assert.Single(awq.Decisions, d => d.Activation == "/model/layers.0/input_layernorm/Mul_1_output_0");
        Assert.Equal(4, group.Consumers.Count);
        Assert.True(group.IsScaled, group.StatusText);
        // The fold is exact only if the branches' q_proj rows took s too: otherwise their output would be off by s.
        Assert.True(nestedError <= flatError * 1.1 + 1e-3, $"{nestedError:E3} vs flat {flatError:E3}");
    }

    private static (double Error, SmoothingReport Smoothing, W8A8Report Rewrite, IReadOnlyList<string> Unused) Quantize(FixtureOptions options,
        IReadOnlyList<int[]> windows, SmoothQuantOptions? smooth = null, Func<Onnx.ModelProto>? build = null)
    {
        build ??= () => FixtureModels.Build(options);
        float[] reference;
        using (var fp = OnnxModel.FromProto(build()))
            reference = W8A8TestKit.Run(W8A8TestKit.Serialize(fp), windows);
        using var calibrationModel = OnnxModel.FromProto(build());
        var stats = W8A8TestKit.Calibrate(calibrationModel, options.Vocab, samples: 64, length: 32);
        using var model = OnnxModel.FromProto(build());
        var (smoothing, rewrite) = W8A8TestKit.Quantize(model, stats, new W8A8Options(), smooth ?? new SmoothQuantOptions());
        double error = W8A8TestKit.RelativeError(reference, W8A8TestKit.Run(W8A8TestKit.Serialize(model), windows));
        return (error, smoothing!, rewrite, UnusedInitializers.Find(model.Graph));
    }
}
