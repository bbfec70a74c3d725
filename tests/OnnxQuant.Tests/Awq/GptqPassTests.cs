using FsCheck.Xunit;
using Onnx;
using OnnxQuant.Awq;
using OnnxQuant.Fixtures;
using OnnxQuant.Gptq;
using OnnxQuant.Passes;
using OnnxQuant.Quantization;
using Xunit.Abstractions;

namespace OnnxQuant.Tests.Awq;

/// <summary>GPTQ and AWQ-GPTQ through the W4 rewrite, and mixed precision under a size budget, on fixtures run in ONNX Runtime CPU.</summary>
public sealed class GptqPassTests
{
    private static readonly Int4QuantOptions Q32 = new() { BlockSize = 32 };

    private readonly ITestOutputHelper _output;

    public GptqPassTests(ITestOutputHelper output) => _output = output;

    private static FixtureOptions Fixture(FixtureFamily family) =>
        new() { Family = family, Layers = 2, Hidden = 64, Heads = 4, Intermediate = 128, Vocab = 128, OutlierChannels = 3, OutlierScale = 50f, Seed = 3 };

    private static W4RewritePass Rewrite(WeightRounding rounding, bool actOrder = true) =>
        new(new W4RewriteOptions { Quantization = Q32, Rounding = rounding, Gptq = new GptqOptions { ActOrder = actOrder } });

    private static AwqPass Awq() => new(new AwqPassOptions { Search = new AwqOptions { Quantization = Q32 } });

    [Theory]
    [InlineData(FixtureFamily.TorchLlama, "logits")]
    [InlineData(FixtureFamily.Bert, "last_hidden_state")]
    public void GptqBeatsRtnAndAwqGptqBeatsAwqOnHeldOutTokens(FixtureFamily family, string output)
    {
        // 1024 calibration rows: H of the 128-wide MLP input needs several times K rows (docs/architecture.md, "GPTQ").
        var h = new AwqFixtureHarness(Fixture(family), samples: 16, sequence: 64);
        double rtn = h.RelativeError(h.Run(h.Apply(Rewrite(WeightRounding.Rtn))), output);
        double gptq = h.RelativeError(h.Run(h.Apply(Rewrite(WeightRounding.Gptq))), output);
        var report = h.Last.Get<W4Report>("test");
        double inInputOrder = h.RelativeError(h.Run(h.Apply(Rewrite(WeightRounding.Gptq, actOrder: false))), output);
        double awq = h.RelativeError(h.Run(h.Apply(Awq(), Rewrite(WeightRounding.Rtn))), output);
        double awqGptq = h.RelativeError(h.Run(h.Apply(Awq(), Rewrite(WeightRounding.Gptq))), output);
        Assert.NotEmpty(h.Last.Get<InputRescaling>("test").Linears);
        _output.WriteLine($"{family}: relative MSE of {output}: RTN {rtn:g4}, GPTQ {gptq:g4}, GPTQ in input order {inInputOrder:g4}, AWQ {awq:g4}, AWQ-GPTQ {awqGptq:g4}");
        Assert.All(report.Decisions.Where(d => d.Quantized), d => Assert.Equal(WeightRounding.Gptq, d.Rounding));
        Assert.True(gptq < 0.8 * rtn, $"GPTQ {gptq:g4} vs RTN {rtn:g4}");
        Assert.True(awqGptq < awq, $"AWQ-GPTQ {awqGptq:g4} vs AWQ {awq:g4}");
    }

    [Fact]
    public void GptqRewriteIsDeterministic()
    {
        var h = new AwqFixtureHarness(Fixture(FixtureFamily.TorchLlama), samples: 4, sequence: 32);
        var first = h.Apply(Awq(), Rewrite(WeightRounding.Gptq, actOrder: true));
        var second = h.Apply(Awq(), Rewrite(WeightRounding.Gptq, actOrder: true));
        Assert.Equal(first, second);
    }

    [Theory]
    [InlineData(32)]
    [InlineData(64)]   // the plan may also give a linear 4 bits with blocks of 32
    public void TheBitsBudgetIsMetExactlyInTheEmittedModel(int blockSize)
    {
        var h = new AwqFixtureHarness(Fixture(FixtureFamily.TorchLlama));
        var rewrite = new W4RewriteOptions { Quantization = new Int4QuantOptions { BlockSize = blockSize }, Rounding = WeightRounding.Gptq };
        double all4 = h.RelativeError(h.Run(h.Apply(new W4RewritePass(rewrite))), "logits");
        const double budgetBits = 6;
        var bytes = h.Apply(new MixedPrecisionPass(new MixedPrecisionOptions(new SizeBudget.AverageBits(budgetBits), rewrite)), new W4RewritePass(rewrite));
        var plan = h.Last.Get<BitsPlan>("test");
        double mixed = h.RelativeError(h.Run(bytes), "logits");

        // Bytes counted from the emitted model: MatMulNBits B + scales + zero points, or the float weight, per planned linear.
        var model = ModelProto.Parser.ParseFrom(bytes);
        var initializers = model.Graph.Initializer.ToDictionary(t => t.Name, t => (long)t.RawData.Length);
        long emitted = 0;
        foreach (var choice in plan.Choices)
        {
            var node = model.Graph.Node.Single(n => n.Name == choice.Linear);
            int bits = plan.Bits[choice.Linear];
            if (bits == BitsPlan.Float)
            {
                Assert.Equal("MatMul", node.OpType);
                emitted += initializers[node.Input[1]];
                continue;
            }
            Assert.Equal("MatMulNBits", node.OpType);
            Assert.Equal(bits, node.Attribute.Single(a => a.Name == "bits").I);
            Assert.Equal(plan.BlockSizeOf(choice.Linear) ?? blockSize, node.Attribute.Single(a => a.Name == "block_size").I);
            emitted += node.Input.Skip(1).Take(3).Where(i => i.Length > 0).Sum(i => initializers[i]);
        }
        long parameters = plan.Choices.Sum(c => (long)c.K * c.N);
        _output.WriteLine($"budget {plan.BudgetBytes} bytes, planned {plan.PlannedBytes}, emitted {emitted}; {8.0 * emitted / parameters:0.000} average bits; "
            + $"{plan.Bits.Values.Count(b => b == 8)} linears at 8 bits, {plan.BlockSizes.Count} with smaller blocks, {plan.Bits.Values.Count(b => b == BitsPlan.Float)} float; logits error {mixed:g4} vs {all4:g4} all at 4 bits");
        Assert.Equal(plan.PlannedBytes, emitted);
        Assert.True(emitted <= Math.Floor(budgetBits * parameters / 8));
        Assert.True(8.0 * emitted / parameters <= budgetBits);
        Assert.Contains(plan.Bits.Values, b => b == 8);
        // The exact plan leaves only what no further upgrade fits in; here that is far under 1 bit per weight.
        Assert.True(8.0 * emitted / parameters > budgetBits - 1, $"only {8.0 * emitted / parameters:0.000} of {budgetBits} bits used");
        Assert.True(mixed < 0.9 * all4, $"mixed {mixed:g4} vs all 4-bit {all4:g4}");
        if (blockSize == 64)
            Assert.NotEmpty(plan.BlockSizes);
    }

    [Fact]
    public void MaxSizeBoundsEveryInitializerByteOfTheEmittedModel()
    {
        var h = new AwqFixtureHarness(Fixture(FixtureFamily.TorchLlama), samples: 4, sequence: 32);
        var rewrite = new W4RewriteOptions { Quantization = Q32 };
        static long InitializerBytes(byte[] model) => ModelProto.Parser.ParseFrom(model).Graph.Initializer.Sum(t => (long)t.RawData.Length);
        long all4 = InitializerBytes(h.Apply(new W4RewritePass(rewrite)));
        long limit = all4 + 40_000;   // room for a few 8-bit linears, not for all
        var bytes = h.Apply(new MixedPrecisionPass(new MixedPrecisionOptions(new SizeBudget.MaxBytes(limit), rewrite)), new W4RewritePass(rewrite));
        var plan = h.Last.Get<BitsPlan>("test");
        long emitted = InitializerBytes(bytes);
        _output.WriteLine($"all at 4 bits {all4} bytes, limit {limit}, emitted {emitted}, {plan.Bits.Values.Count(b => b == 8)} linears at 8 bits");
        Assert.True(emitted <= limit, $"{emitted} bytes over the {limit} limit");
        Assert.Equal(all4 + plan.PlannedBytes - plan.Choices.Sum(c => c.Bytes4), emitted);
        Assert.Contains(plan.Bits.Values, b => b == 8);
        Assert.Contains(plan.Bits.Values, b => b == 4);
    }

    [Fact]
    public void MoreBudgetNeverRaisesTheSummedErrorOnTheFixture()
    {
        var h = new AwqFixtureHarness(Fixture(FixtureFamily.Bert), samples: 4, sequence: 32);
        var rewrite = new W4RewriteOptions { Quantization = Q32 };
        h.Apply(new MixedPrecisionPass(new MixedPrecisionOptions(new SizeBudget.AverageBits(5.5), rewrite)));
        var choices = h.Last.Get<BitsPlan>("test").Choices;
        long minimum = choices.Sum(c => c.Bytes4), maximum = choices.Sum(c => c.BytesFloat);
        BitsPlan? previous = null;
        for (long budget = minimum; budget <= maximum; budget += (maximum - minimum) / 40)
        {
            var plan = BitsPlanner.Assign(choices, budget);
            Assert.True(plan.PlannedBytes <= budget);
            Assert.Equal(choices.Sum(plan.BytesOf), plan.PlannedBytes);
            if (previous is not null)
                Assert.True(choices.Sum(plan.ErrorOf) <= choices.Sum(previous.ErrorOf), $"summed error rose at budget {budget}");
            previous = plan;
        }
        Assert.All(choices, c => Assert.Equal(BitsPlan.Float, BitsPlanner.Assign(choices, maximum).Bits[c.Linear]));
        Assert.All(choices, c => Assert.Equal(4, BitsPlanner.Assign(choices, minimum).Bits[c.Linear]));
    }

    // Random linears small enough that one capacity unit is one byte, so the programme must find the exact optimum.
    private static List<LinearChoices> RandomChoices(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(i =>
        {
            int k = 32 * (1 + rng.Next(4)), n = 16 * (1 + rng.Next(4));
            double e4 = rng.NextDouble(), e8 = e4 * rng.NextDouble() * 0.1;
            long b4 = BitsPlanner.QuantizedBytes(k, n, 4, Q32, 4), b8 = BitsPlanner.QuantizedBytes(k, n, 8, Q32, 4);
            // Some linears also offer 4 bits at a smaller block: between 4 and 8 bits in error and (usually) bytes.
            List<FinerBlocks> finer = rng.Next(2) == 0 ? [] : [new(16, e4 * (0.3 + 0.6 * rng.NextDouble()), b4 + n * (k / 16) * 2 + rng.Next(8))];
            return new LinearChoices($"l{i}", k, n, e4, e8, b4, b8, 4L * k * n) { Finer = finer };
        }).ToList();
    }

    // (bytes, error) of every option of a linear, in the planner's terms.
    private static (long Bytes, double Error)[] OptionsOf(LinearChoices c) =>
        [(c.Bytes4, c.Error4), .. c.Finer.Select(f => (f.Bytes, f.Error)), (c.Bytes8, c.Error8), (c.BytesFloat, 0.0)];

    [Property(MaxTest = 40)]
    public bool PlansAreTheLeastSummedErrorWithinTheBudget(byte count, int seed, byte fraction)
    {
        var choices = RandomChoices(1 + count % 7, seed);
        long min = choices.Sum(c => c.Bytes4), max = choices.Sum(c => c.BytesFloat);
        long budget = min + (max - min) * fraction / 255;
        var plan = BitsPlanner.Assign(choices, budget, buckets: 1 << 20);
        // Every assignment of 4 (each block size) / 8 / float, enumerated.
        var options = choices.Select(OptionsOf).ToList();
        double optimum = double.PositiveInfinity;
        int total = options.Aggregate(1, (p, o) => p * o.Length);
        for (int code = 0; code < total; code++)
        {
            long bytes = 0;
            double error = 0;
            for (int j = 0, rest = code; j < choices.Count; rest /= options[j].Length, j++)
            {
                var (b, e) = options[j][rest % options[j].Length];
                (bytes, error) = (bytes + b, error + e);
            }
            if (bytes <= budget)
                optimum = Math.Min(optimum, error);
        }
        return plan.PlannedBytes <= budget && plan.PlannedBytes == choices.Sum(plan.BytesOf)
            && Math.Abs(choices.Sum(plan.ErrorOf) - optimum) <= 1e-12;
    }

    [Property(MaxTest = 40)]
    public bool MoreBudgetNeverRaisesTheSummedError(byte count, int seed, byte budgetA, byte budgetB)
    {
        var choices = RandomChoices(1 + count % 12, seed);
        long min = choices.Sum(c => c.Bytes4), max = choices.Sum(c => c.BytesFloat);
        long small = min + (max - min) * Math.Min(budgetA, budgetB) / 255, large = min + (max - min) * Math.Max(budgetA, budgetB) / 255;
        var a = BitsPlanner.Assign(choices, small, buckets: 64);
        var b = BitsPlanner.Assign(choices, large, buckets: 64);
        return a.PlannedBytes <= small && b.PlannedBytes <= large && choices.Sum(b.ErrorOf) <= choices.Sum(a.ErrorOf);
    }

    [Fact]
    public void ABudgetBelowFourBitsIsAUsageErrorNamingTheMinimum()
    {
        var h = new AwqFixtureHarness(Fixture(FixtureFamily.Bert), samples: 2, sequence: 16);
        var rewrite = new W4RewriteOptions { Quantization = Q32 };
        var error = Assert.Throws<OnnxQuantException>(() => h.Apply(new MixedPrecisionPass(new MixedPrecisionOptions(new SizeBudget.AverageBits(4.5), rewrite))));
        Assert.Equal(ExitCode.Usage, error.ExitCode);
        // Blocks of 32 with fp32 scales and 4-bit zero points: 4 + (32 + 4) / 32 = 5.125 bits per weight.
        Assert.Contains("--bits-budget 4.5", error.Message);
        Assert.Contains("5.125", error.Message);
    }
}
