using System.Numerics.Tensors;
using OnnxQuant.Analysis;
using OnnxQuant.IR;
using OnnxQuant.Numerics;
using OnnxQuant.Quantization;
using OnnxQuant.Smoothing;
using DataType = Onnx.TensorProto.Types.DataType;

namespace OnnxQuant.Passes.W8A8;

/// <summary>
/// Emits one linear's quantized computation after its activation front and writes the result under the linear's
/// original output name (a MatMul's bias Add stays where it was; a Gemm's bias gets an Add here).
/// </summary>
internal static class LinearBack
{
    public static void Emit(GraphEmitter e, LinearNode linear, QuantizedActivation x, W8A8Options options, ActivationRanges ranges)
    {
        var graph = e.Graph;
        var type = linear.WeightType;
        string hint = linear.Name.Length > 0 ? linear.Name : linear.Node.Output[0];
        // QLinear's output scale needs the whole weight; the other formats read it a tile at a time.
        var kn = options.Format == W8A8Format.QLinear ? linear.ReadWeightKN(graph) : null;
        var tiles = kn is null ? LinearWeightTiles.Of(graph, linear) : null;
        var bias = linear.Node.IsOnnx("Gemm") ? linear.ReadBias(graph) : null;
        string output = linear.Node.Output[0];
        graph.RemoveNode(linear.Node);

        switch (options.Format)
        {
            case W8A8Format.Int8:
            case W8A8Format.Dynamic:
            {
                float[]? floatRows = x.Float is { } f ? FloatRows(tiles!, linear.N, f) : null;
                var weights = Int8Quantizer.QuantizePerChannel(tiles!, linear.K, linear.N, options.ReducedRangeWeights, x.Float?.Channels);
                string wq = e.Int8Array($"{linear.WeightName}_int8", weights.Values, [linear.K, linear.N]);
                string acc = e.Node("MatMulInteger", $"{hint}/MatMulInteger", $"{hint}_int32", x.ZeroPoint is null ? [x.Value, wq] : [x.Value, wq, x.ZeroPoint]);
                string accf = e.Cast(acc, DataType.Float, $"{hint}_acc");
                string y;
                if (x.StaticScale is { } a)
                {
                    var combined = new float[linear.N];
                    TensorPrimitives.Multiply(weights.Scales, a, combined);
                    y = e.Node("Mul", $"{hint}/Rescale", $"{hint}_rescaled", [accf, e.Floats($"{hint}_rescale", combined, [linear.N])]);
                }
                else
                {
                    string perColumn = e.Node("Mul", $"{hint}/WeightScale", $"{hint}_wscaled", [accf, e.Floats($"{hint}_weight_scale", weights.Scales, [linear.N])]);
                    y = e.Node("Mul", $"{hint}/TokenScale", $"{hint}_rescaled", [perColumn, x.TokenScale!]);
                }
                y = AddFloatChannels(e, y, x, floatRows, linear.N, hint);
                Finish(e, y, type, bias, output, hint);
                break;
            }
            case W8A8Format.QLinear:
            {
                float[]? floatRows = x.Float is { } f ? SplitRows(kn!, linear.N, f) : null;
                var weights = Int8Quantizer.QuantizePerChannel(kn!, linear.K, linear.N, options.ReducedRangeWeights);
                string wq = e.Int8Array($"{linear.WeightName}_int8", weights.Values, [linear.K, linear.N]);
                float a = x.StaticScale!.Value;
                float yScale = OutputScale(linear, kn!, ranges, options.OutputRangeMargin);
                // The output takes the activation's type and zero point (int8 0, or uint8 128).
                string zp = x.ZeroPoint ?? e.Int8s($"{hint}_zero_point", [0], []);
                string yq = e.Node("QLinearMatMul", $"{hint}/QLinearMatMul", $"{hint}_int8_out", [
                    x.Value, e.Scalar($"{hint}_a_scale", a), zp,
                    wq, e.Floats($"{hint}_weight_scale", weights.Scales, [linear.N]), e.Int8s($"{hint}_weight_zero_point", new sbyte[linear.N], [linear.N]),
                    e.Scalar($"{hint}_y_scale", yScale), zp]);
                string y = e.Node("DequantizeLinear", $"{hint}/DequantizeLinear", $"{hint}_dq", [yq, e.Scalar($"{hint}_y_dq_scale", yScale), zp]);
                y = AddFloatChannels(e, y, x, floatRows, linear.N, hint);
                Finish(e, y, type, bias, output, hint);
                break;
            }
            case W8A8Format.Qdq:
            {
                var weights = Int8Quantizer.QuantizePerChannel(tiles!, linear.K, linear.N, options.ReducedRangeWeights);
                string wq = e.Int8Array($"{linear.WeightName}_int8", weights.Values, [linear.K, linear.N]);
                // Weights dequantize in the model's type when the opset allows fp16 scales, else in fp32 and cast.
                bool narrow = type == DataType.Float || e.Opset >= 19;
                var scaleType = narrow ? type : DataType.Float;
                string wdq = e.Node("DequantizeLinear", $"{hint}/WeightDequantizeLinear", $"{hint}_weight_dq", [
                    wq, e.Floats($"{hint}_weight_scale", weights.Scales, [linear.N], scaleType), e.Int8s($"{hint}_weight_zero_point", new sbyte[linear.N], [linear.N])],
                    n => n.With("axis", 1L));
                if (!narrow)
                    wdq = e.Cast(wdq, type, $"{hint}_weight_dq");
                string y = e.Node("MatMul", $"{hint}/MatMul", $"{hint}_matmul", [x.Value, wdq]);
                if (bias is not null)
                    y = e.Node("Add", $"{hint}/Bias", $"{hint}_biased", [y, e.Floats($"{hint}_bias", bias, [linear.N], type)]);
                e.Rename(y, output);
                break;
            }
        }
    }

    // The float channels' weight rows (times the absorbed 1/s, since they multiply the unsmoothed input), then zeroed in
    // the weight the int8 product uses, so they neither count twice nor set its column scales.
    private static float[] SplitRows(float[] kn, int n, FloatChannelInput f)
    {
        var rows = FloatRows(Int4PackedQuantizer.FromArray(kn, n), n, f);
        foreach (int channel in f.Channels)
            kn.AsSpan(channel * n, n).Clear();
        return rows;
    }

    // The float channels' weight rows times the absorbed 1/s, read alone; the int8 product must then treat those rows
    // as zero (Int8Quantizer's zeroRows, or SplitRows clearing them).
    private static float[] FloatRows(IWeightTiles weight, int n, FloatChannelInput f)
    {
        var rows = new float[f.Channels.Count * n];
        for (int i = 0; i < f.Channels.Count; i++)
        {
            var row = rows.AsSpan(i * n, n);
            weight.ReadTile(f.Channels[i], 1, 0, n, row);
            TensorPrimitives.Multiply(row, f.RowScale[i], row);
        }
        return rows;
    }

    // y + Gather(x, float channels) · their weight rows, in fp32.
    private static string AddFloatChannels(GraphEmitter e, string y, QuantizedActivation x, float[]? floatRows, int n, string hint)
    {
        if (x.Float is not { } fc || floatRows is null)
            return y;
        string rows = e.Floats($"{hint}_float_rows", floatRows, [fc.Channels.Count, n]);
        string exact = e.Node("MatMul", $"{hint}/FloatChannels", $"{hint}_float_part", [fc.Value, rows]);
        return e.Node("Add", $"{hint}/AddFloatChannels", $"{hint}_with_float", [y, exact]);
    }

    // fp32 product -> [Cast to the model's type] -> [+ Gemm bias], the last one named as the linear's output.
    private static void Finish(GraphEmitter e, string y, DataType type, float[]? bias, string output, string hint)
    {
        if (type != DataType.Float)
            y = e.Cast(y, type, $"{hint}_out");
        if (bias is not null)
            y = e.Node("Add", $"{hint}/Bias", $"{hint}_biased", [y, e.Floats($"{hint}_bias", bias, [bias.Length], type)]);
        e.Rename(y, output);
    }

    // QLinearMatMul needs the output's range up front. The recorded rows give typical sums but rarely the rare outlier
    // tokens, so the largest single term max_j(max|x_j| · |W[j, n]|) over the calibrated maxima bounds it from below too.
    private static float OutputScale(LinearNode linear, float[] kn, ActivationRanges ranges, float margin)
    {
        if (ranges.SampleRows(linear.Activation) is not { } sample || ranges.AbsMax(linear.Activation) is not { } absMax)
            throw new OnnxQuantException(null, $"--format qlinear needs recorded activation rows for '{linear.Activation}' to set the output scale of {linear.Node.Describe()}; recalibrate", ExitCode.Unsupported);
        var y = MatrixMultiply.Multiply(MatrixView.Of(sample.Rows, sample.Count, linear.K), MatrixView.Of(kn, linear.K, linear.N));
        float max = MathF.Abs(TensorPrimitives.MaxMagnitude(y));
        for (int j = 0; j < linear.K; j++)
            max = MathF.Max(max, absMax[j] * MathF.Abs(TensorPrimitives.MaxMagnitude(kn.AsSpan(j * linear.N, linear.N))));
        return Int8Quantizer.QuantizeActivationScale(max * margin);
    }
}
