using OnnxQuant.Analysis;
using System.Globalization;
using OnnxQuant.Smoothing;

namespace OnnxQuant.Review;

/// <summary>The short texts of a <see cref="LinearChange"/> that the terminal table and the HTML page both print.</summary>
public static class LinearDiffText
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>"W8A8 static", "W4 g128 asym awq", "float MatMul".</summary>
    public static string Scheme(LinearChange r) => r.Scheme switch
    {
        LinearScheme.W8A8Static => "W8A8 static",
        LinearScheme.W8A8Dynamic => "W8A8 dynamic",
        LinearScheme.W8A8QLinear => "W8A8 qlinear",
        LinearScheme.W8A8Qdq => "W8A8 qdq",
        LinearScheme.W4 when r.W4 is { } w => $"W{w.Bits} g{w.BlockSize} {(w.ZeroPoints ? "asym" : "sym")} {(r.Smoothing?.Method == SmoothingMethod.Awq ? "awq" : "rtn")}",
        LinearScheme.W4 => "W4",
        LinearScheme.W8 when r.W4 is { } w => $"W8 g{w.BlockSize} {(w.ZeroPoints ? "asym" : "sym")} rtn",
        LinearScheme.W8 => "W8",
        _ => $"float {r.OpAfter}",
    };

    /// <summary>"sq a=0.85 -> norm" (folded into gamma), "awq r=0.35 -> prev linear" (its columns), "Mul" (an inserted Mul).</summary>
    public static string Smoothing(LinearSmoothing? s)
    {
        if (s is null)
            return "";
        string fold = s.Fold switch
        {
            FoldKind.NormGamma => "norm",
            FoldKind.LinearColumns => "prev linear",
            _ => "Mul",
        };
        if (s.Method is not { } method)
            return fold;
        string alpha = s.Alpha is not { } a ? "" : method == SmoothingMethod.Awq ? $" r={a.ToString("0.00", Inv)}" : $" a={a.ToString("0.00", Inv)}";
        return $"{(method == SmoothingMethod.Awq ? "awq" : "sq")}{alpha} -> {fold}";
    }

    /// <summary>"float32 384x384", with "Gemm " in front for a Gemm.</summary>
    public static string Before(LinearChange r) => $"{(r.Op == "Gemm" ? "Gemm " : "")}{r.Dtype} {r.K}x{r.N}";
}
