//! The SDK's default credentials chain (`AWS_*` variables, profiles,
//! web identity, ECS, EC2 instance metadata) is built asynchronously; nora
//! opens storage synchronously, so the chain is built on first use.

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::provider_config::ProviderConfig;
use aws_sdk_s3::config::{ProvideCredentials, SharedHttpClient};
use aws_smithy_async::rt::sleep::TokioSleep;

#[derive(Debug)]
pub struct LazyDefaultChain {
    http: SharedHttpClient,
    chain: tokio::sync::OnceCell<DefaultCredentialsChain>,
}

impl LazyDefaultChain {
    pub fn new(http: SharedHttpClient) -> LazyDefaultChain {
        LazyDefaultChain {
            http,
            chain: tokio::sync::OnceCell::new(),
        }
    }
}

impl ProvideCredentials for LazyDefaultChain {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(async move {
            let chain = self
                .chain
                .get_or_init(|| async {
                    let cfg = ProviderConfig::without_region()
                        .with_http_client(self.http.clone())
                        .with_sleep_impl(TokioSleep::new());
                    DefaultCredentialsChain::builder()
                        .configure(cfg)
                        .build()
                        .await
                })
                .await;
            chain.provide_credentials().await
        })
    }
}
