using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.Gptq;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Passes;
using OnnxQuant.Quantization;
using OnnxQuant.Statistics;

namespace OnnxQuant.Tests.Quantization;

/// <summary>
/// GPTQ's automatic dampening (LinearRounder with <see cref="GptqOptions.AutoDampening"/>): each linear gets the
/// candidate whose rounding, fitted on three quarters of the calibration rows, has the least output error on the
/// fourth quarter — checked here against each candidate run on its own and measured independently.
/// </summary>
public sealed class AutoDampeningTests
{
    private const int K = 128, N = 48;

    // x -> MatMul(W) -> y, and statistics whose sample rows are correlated (a rank-8 signal plus noise): H estimated
    // from them is poor when rows are few, which is where the dampening matters.
    private static (LinearNode Linear, float[] Weight, CalibrationStats Stats, float[] Rows) Setup(int rows, int seed)
    {
        var proto = new ModelProto { IrVersion = 8, Graph = new GraphProto { Name = "one-linear" } };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        var model = OnnxModel.FromProto(proto);
        var weight = QuantTestData.Weight(K, N, seed);
        model.Graph.SetInitializer(Tensor.FromFloats("w", weight, [K, N]));
        var node = Nodes.Create("MatMul", ["x", "w"], ["y"], "/linear/MatMul");
        model.Graph.AddNode(node);
        var linear = LinearNode.TryCreate(model.Graph, node) ?? throw new InvalidOperationException("not a linear");

        var random = new Random(seed);
        var basis = QuantTestData.Activations(8, K, seed + 1);
        var sample = new float[rows * K];
        for (int r = 0; r < rows; r++)
        {
            for (int b = 0; b < 8; b++)
            {
                float c = (float)(random.NextDouble() * 2 - 1);
                for (int j = 0; j < K; j++) sample[r * K + j] += c * basis[b * K + j];
            }
            for (int j = 0; j < K; j++) sample[r * K + j] += 0.05f * (float)(random.NextDouble() * 2 - 1);
        }
        var absMax = new float[K];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < K; j++) absMax[j] = Math.Max(absMax[j], Math.Abs(sample[r * K + j]));
        var stats = new CalibrationStats("none", new CalibrationInfo(), [new ActivationStats("x", absMax, absMax, -1, 1, rows, sample, rows)]);
        return (linear, weight, stats, sample);
    }

    // ||X_h (W - Q)||² over the held-out rows (r % 4 == 3), in double, from the test's own rows.
    private static double HeldOutError(float[] rows, int count, float[] weight, float[] dequantized)
    {
        double total = 0;
        for (int r = 3; r < count; r += 4)
            for (int c = 0; c < N; c++)
            {
                double y = 0;
                for (int j = 0; j < K; j++) y += rows[r * K + j] * (double)(weight[j * N + c] - dequantized[j * N + c]);
                total += y * y;
            }
        return total;
    }

    [Theory]
    [InlineData(96, 1)]
    [InlineData(160, 2)]
    [InlineData(1024, 3)]
    public void Auto_dampening_picks_the_candidate_with_the_least_held_out_error_and_rounds_with_it(int rows, int seed)
    {
        var (linear, weight, stats, sample) = Setup(rows, seed);
        var options = new Int4QuantOptions { BlockSize = 32 };

        var errors = GptqOptions.DampeningChoices.Select(d =>
        {
            var fixedFit = new LinearRounder(WeightRounding.Gptq, new GptqOptions { Dampening = d }, stats, null, RowSplit.Fit);
            return HeldOutError(sample, rows, weight, fixedFit.Quantize(linear, weight, 4, options, out _).Dequantize());
        }).ToList();
        // The candidates really differ here, so picking the right one is a real check.
        Assert.True(errors.Max() > errors.Min() * 1.01, $"held-out errors {string.Join(", ", errors)}");
        float expected = GptqOptions.DampeningChoices[errors.IndexOf(errors.Min())];

        var auto = new LinearRounder(WeightRounding.Gptq, new GptqOptions { AutoDampening = true }, stats, null, RowSplit.All);
        var q = auto.Quantize(linear, weight, 4, options, out bool usedGptq);
        Assert.True(usedGptq);
        Assert.Equal(expected, auto.DampeningOf(linear.Name));

        // The final rounding is GPTQ on all rows at the chosen dampening, code for code.
        var chosen = new LinearRounder(WeightRounding.Gptq, new GptqOptions { Dampening = expected }, stats, null, RowSplit.All);
        Assert.Equal(chosen.Quantize(linear, weight, 4, options, out _).Codes, q.Codes);
    }

    [Fact]
    public void With_too_few_rows_to_hold_some_out_the_given_dampening_is_kept()
    {
        var (linear, weight, stats, _) = Setup(rows: 40, seed: 4); // 10 held-out rows
        var auto = new LinearRounder(WeightRounding.Gptq, new GptqOptions { AutoDampening = true, Dampening = 0.05f }, stats, null, RowSplit.All);
        auto.Quantize(linear, weight, 4, new Int4QuantOptions { BlockSize = 32 }, out bool usedGptq);
        Assert.True(usedGptq);
        Assert.Equal(0.05f, auto.DampeningOf(linear.Name));
    }
}
