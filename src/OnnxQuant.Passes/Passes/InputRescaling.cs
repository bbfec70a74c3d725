namespace OnnxQuant.Passes;

/// <summary>
/// How AWQ changed the inputs of the linears it scaled: linear name -> (the calibrated activation, s). The linear now
/// reads X / s, so a later pass that needs its input rows (GPTQ's H) divides the calibrated rows by s.
/// </summary>
public sealed record InputRescaling(IReadOnlyDictionary<string, RescaledInput> Linears)
{
    public static readonly InputRescaling None = new(new Dictionary<string, RescaledInput>());
}

/// <summary>The calibrated activation a linear's input came from, and the per-channel divisor AWQ applied to it.</summary>
public sealed record RescaledInput(string Activation, float[] Scales);
